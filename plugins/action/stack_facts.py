# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action stack_facts: computes the stack model on the controller (see plugin_utils/stack.py)."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.webinfra.distributed.plugins.plugin_utils.stack import DB_SETTINGS, PORTS, StackError, build

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGUMENT_SPEC = {
        "inputs": {"type": "dict", "default": {}},
        "fact": {"type": "str", "default": "webinfra_stack"},
    }

    def _role_defaults(self, task_vars):
        """The variables of PORTS and DB_SETTINGS as the roles' defaults/main.yml set them."""
        wanted = {}
        for role, var in list(PORTS.values()) + list(DB_SETTINGS.values()):
            wanted.setdefault(role, set()).add(var)
        out = {}
        for role, names in wanted.items():
            path = ROLES_DIR / role / "defaults" / "main.yml"
            data = yaml.safe_load(path.read_text()) or {}
            values = {}
            for name in names:
                if name not in data:
                    continue
                value = data[name]
                if isinstance(value, str) and "{{" in value:
                    value = self._templar.template(value)
                values[name] = value
            out[role] = values
        return out

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _valid, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        host = task_vars["inventory_hostname"]
        try:
            model = build(
                host,
                args["inputs"],
                task_vars["groups"],
                task_vars["hostvars"],
                self._role_defaults(task_vars),
            )
        except StackError as exc:
            raise AnsibleActionFail(f"stack: {exc}") from exc
        # The model holds the application's database passwords: the result is hidden once it
        # succeeded (a refusal above keeps its message visible).
        result.update(changed=False, ansible_facts={args["fact"]: model}, _ansible_no_log=True)
        return result
