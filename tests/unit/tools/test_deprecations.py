"""tools/deprecations.py: which deprecation warnings of a log are this collection's own."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("deprecations", Path(__file__).parents[3] / "tools" / "deprecations.py")
deprecations = importlib.util.module_from_spec(spec)
spec.loader.exec_module(deprecations)

ROOT = "/work/checkout"
LOG = [
    "20:41:02   \x1b[2m│\x1b[0m [DEPRECATION WARNING]: INJECT_FACTS_AS_VARS default to `True` is deprecated,",
    "20:41:02   \x1b[2m│\x1b[0m top-level facts will not be auto injected after the change.",
    "20:41:02   \x1b[2m│\x1b[0m Origin: /work/checkout/roles/haproxy/tasks/main.yml:5:14",
    "20:41:03 [DEPRECATION WARNING]: community.mysql.mysql_query has been deprecated.",
    "20:41:03 Origin: /home/u/.ansible/collections/ansible_collections/webinfra/distributed/roles/x/tasks/a.yml:6:7",
    "20:41:04 [DEPRECATION WARNING]: Passing warnings to `exit_json` is deprecated.",
    "20:41:04 Origin: /venv/lib/ansible_collections/containers/podman/plugins/modules/podman.py:1:1",
    "20:41:05 [DEPRECATION WARNING]: The 'webinfra.distributed.old' filter is deprecated.",
    "",
]


def test_origin_in_the_checkout_or_an_installed_copy_and_named_ones_are_ours():
    found = deprecations.own_deprecations(LOG, ROOT)
    assert len(found) == 3
    assert any("INJECT_FACTS_AS_VARS" in entry and "top-level facts" in entry and "haproxy" in entry for entry in found)
    assert any("community.mysql.mysql_query" in entry for entry in found)
    assert any("webinfra.distributed.old" in entry for entry in found)


def test_other_code_is_left_to_its_owners():
    assert deprecations.own_deprecations(LOG[5:7], ROOT) == []
    assert deprecations.own_deprecations(["no warning here"], ROOT) == []


def test_a_prefix_of_the_root_is_not_the_root():
    log = ["[DEPRECATION WARNING]: x is deprecated.", "Origin: /work/checkout-other/site.yml:1:1"]
    assert deprecations.own_deprecations(log, ROOT) == []
