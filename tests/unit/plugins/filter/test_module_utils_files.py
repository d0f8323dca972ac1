import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.module_utils_files import SOURCE, module_utils_files


def test_directories_then_the_modules_with_their_content():
    files = module_utils_files(["daemon", "gtid"], "/usr/local/lib/webinfra-x/")
    dirs = [f["path"] for f in files if f.get("state") == "directory"]
    assert dirs == [
        "/usr/local/lib/webinfra-x",
        "/usr/local/lib/webinfra-x/ansible_collections",
        "/usr/local/lib/webinfra-x/ansible_collections/webinfra",
        "/usr/local/lib/webinfra-x/ansible_collections/webinfra/distributed",
        "/usr/local/lib/webinfra-x/ansible_collections/webinfra/distributed/plugins",
        "/usr/local/lib/webinfra-x/ansible_collections/webinfra/distributed/plugins/module_utils",
    ]
    daemon = files[len(dirs)]
    assert daemon["path"] == dirs[-1] + "/daemon.py" and daemon["mode"] == "0644" and daemon["owner"] == "root"
    assert daemon["content"] == (SOURCE / "daemon.py").read_text()


def test_an_unknown_module_is_refused():
    with pytest.raises(AnsibleFilterError, match="no module_utils named 'nope'"):
        module_utils_files(["nope"], "/x")
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        module_utils_files("daemon", "/x")
