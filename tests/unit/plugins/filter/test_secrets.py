"""Unit tests of the weak_secrets filter's logic."""

from pathlib import Path

import pytest
import yaml

from ansible_collections.webinfra.distributed.plugins.action.stack_facts import add_etcd_passwords
from ansible_collections.webinfra.distributed.plugins.plugin_utils.secrets import stored_password, weak_secrets


def test_lab_defaults_short_and_empty_values_are_weak():
    secrets = {
        "a_lab": "lab-repl-password",
        "b_molecule": "molecule-stats-password",
        "c_short": "eleven-char",
        "d_empty": "",
        "e_none": None,
        "f_strong": "s3cret-from-the-vault",
    }
    assert weak_secrets(secrets) == ["a_lab", "b_molecule", "c_short", "d_empty", "e_none"]


def test_min_length_is_configurable():
    assert weak_secrets({"x": "twelve-chars"}) == []
    assert weak_secrets({"x": "twelve-chars"}, min_length=13) == ["x"]


def test_every_lab_inventory_password_is_known():
    """Each *_password of the lab inventories is refused outside the lab (the lab's inventory is
    public: a copy of it must not deploy a production stack with its passwords)."""
    root = Path(__file__).resolve().parents[4] / "inventories"
    found = {}
    for path in sorted(root.glob("lab*/group_vars/**/*.yml")) + sorted(root.glob("lab*/group_vars/*.yml")):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            if name.endswith("_password"):
                found[name] = value
    assert "monitoring_web_password" in found and len(found) >= 6, found.keys()
    assert weak_secrets(found, min_length=1) == sorted(found), "a lab password that is not in LAB_SECRETS"


def test_a_non_mapping_is_refused():
    with pytest.raises(TypeError, match="mapping"):
        weak_secrets(["lab-repl-password"])


def test_stored_password_is_made_once_private_and_read_again(tmp_path):
    directory = tmp_path / "pki" / "etcd"
    first = stored_password(str(directory), "root")
    assert len(first) == 32 and first.isalnum()
    assert stored_password(str(directory), "root") == first
    assert oct((directory / "root").stat().st_mode & 0o777) == "0o600"
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    (directory / "chosen").write_text("an-operators-own-password\n")
    assert stored_password(str(directory), "chosen") == "an-operators-own-password"
    with pytest.raises(ValueError, match="plain file name"):
        stored_password(str(directory), "../x")


def test_etcd_passwords_join_the_model(tmp_path):
    etcd = {"users": {"db-01": {"name": "webinfra-ha-db-01", "prefixes": ["/webinfra/w/"]}}}
    add_etcd_passwords(etcd, str(tmp_path))
    assert etcd["root_password"] == (tmp_path / "root").read_text().strip()
    assert etcd["users"]["db-01"]["password"] == (tmp_path / "webinfra-ha-db-01").read_text().strip()
    assert etcd["root_password"] != etcd["users"]["db-01"]["password"]
    none = {"users": {}}
    add_etcd_passwords(none, "")
    assert none["root_password"] == ""
