# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter module_utils_files: the files that install some of the collection's module_utils on a host."""

from __future__ import annotations

DOCUMENTATION = r"""
name: module_utils_files
short_description: Entries for webinfra.distributed.files that install module_utils on a host
version_added: 0.8.0
author: webinfra maintainers (@webinfra)
description:
  - The collection's services (the HA agent, the backup agent) run from copies of its
    C(plugins/module_utils) files under a directory of the host, importable as
    C(ansible_collections.webinfra.distributed.plugins.module_utils).
  - Returns the directories from the given root down to that package, then one file per
    module with its content, read on the controller from this collection.
options:
  _input:
    description: Names of the module_utils modules (without C(.py)).
    type: list
    elements: str
    required: true
  root:
    description: The directory on the host that goes on the service's C(PYTHONPATH).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: The agent's code
  webinfra.distributed.files:
    files: "{{ __modules | webinfra.distributed.module_utils_files('/usr/local/lib/webinfra-backup') }}"
  vars:
    __modules: [backup, backup_agent, daemon, gtid]
"""

RETURN = r"""
_value:
  description: C(path), C(state) or C(content), C(owner), C(group) and C(mode) for each directory and file.
  type: list
  elements: dict
"""

from pathlib import Path

from ansible.errors import AnsibleFilterError

SOURCE = Path(__file__).resolve().parents[1] / "module_utils"
PACKAGE = ("ansible_collections", "webinfra", "distributed", "plugins", "module_utils")


def module_utils_files(modules, root):
    if isinstance(modules, str) or not hasattr(modules, "__iter__"):
        raise AnsibleFilterError("module_utils_files: expected a list of module names")
    root = str(root).rstrip("/")
    owned = {"owner": "root", "group": "root"}
    out, path = [{"path": root, "state": "directory", **owned, "mode": "0755"}], root
    for part in PACKAGE:
        path = f"{path}/{part}"
        out.append({"path": path, "state": "directory", **owned, "mode": "0755"})
    for name in modules:
        source = SOURCE / f"{name}.py"
        if not source.is_file():
            raise AnsibleFilterError(f"module_utils_files: no module_utils named {name!r} in this collection")
        out.append({"path": f"{path}/{name}.py", **owned, "mode": "0644", "content": source.read_text()})
    return out


class FilterModule:
    def filters(self):
        return {"module_utils_files": module_utils_files}
