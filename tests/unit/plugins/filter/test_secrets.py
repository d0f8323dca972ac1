"""Unit tests of the weak_secrets filter's logic."""

from pathlib import Path

import pytest
import yaml

from ansible_collections.webinfra.distributed.plugins.plugin_utils.secrets import weak_secrets


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
