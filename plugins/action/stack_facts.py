# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action stack_facts: computes the stack model on the controller (see plugin_utils/stack.py)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.webinfra.distributed.plugins.plugin_utils import readiness
from ansible_collections.webinfra.distributed.plugins.plugin_utils.secrets import stored_password
from ansible_collections.webinfra.distributed.plugins.plugin_utils.stack import (
    DB_SETTINGS,
    HA_SETTINGS,
    PORTS,
    TIMING,
    StackError,
    admin_networks_problem,
    build,
    topology_hosts,
)

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


@functools.cache
def role_defaults():
    """The variables of PORTS, DB_SETTINGS, HA_SETTINGS and TIMING as the roles' defaults/main.yml set them (literal
    values: a unit test keeps them so), read once per controller process."""
    files, out = {}, {}
    for role, var in [*PORTS.values(), *DB_SETTINGS.values(), *HA_SETTINGS.values(), *TIMING.values()]:
        if role not in files:
            files[role] = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
        if var in files[role]:
            out.setdefault(role, {})[var] = files[role][var]
    return out


def add_etcd_passwords(etcd, directory):
    """etcd's root password and each HA agent's, kept on the controller in `directory` (generated
    the first time: plugin_utils.secrets.stored_password)."""
    if not etcd["users"]:
        etcd["root_password"] = ""
        return
    if not directory:
        raise StackError("webinfra_secrets_dir must name a directory on the controller for etcd's passwords")
    etcd["secrets_dir"] = directory
    etcd["root_password"] = stored_password(directory, "root")
    for user in etcd["users"].values():
        user["password"] = stored_password(directory, user["name"])


def refusal_message(host, inputs, task_vars, partial):
    """Why the run stops before the model is built ('' when it goes on): this host's platform (the
    OS gate), and on the play's first host of the stack every missing input of the whole inventory
    (plugin_utils.readiness), so one refusal names them all; the other hosts point at it. Partial
    models (failover, health: a stack already deployed) judge neither."""
    if partial:
        return ""
    found = []
    problem = readiness.os_problem(host, task_vars.get("ansible_facts") or {})
    if problem:
        found.append(problem)
    topology = topology_hosts(inputs, task_vars["groups"])
    pointer = ""
    if host in topology["stack"]:
        play_hosts = [h for h in task_vars.get("ansible_play_hosts_all") or [] if h in topology["stack"]]
        lab = str(inputs.get("webinfra_lab", False)).strip().lower() in ("true", "yes", "on", "1")
        missing = readiness.problems(inputs, task_vars["groups"], task_vars["hostvars"], topology, lab)
        networks = admin_networks_problem(inputs)
        if networks:
            missing.append(networks)
        if missing and play_hosts and play_hosts[0] != host:
            pointer = f"the inventory is not ready for a run: {play_hosts[0]}'s refusal lists every input to set"
        else:
            found.extend(missing)
    if found:
        return readiness.refusal(found) + (f"\n{pointer}" if pointer else "")
    return pointer


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGUMENT_SPEC = {
        "inputs": {"type": "dict", "default": {}},
        "fact": {"type": "str", "default": "webinfra_stack"},
        "partial": {"type": "bool", "default": False},
        # Where the controller keeps the passwords it generates (etcd's users): created when missing.
        "secrets_dir": {"type": "str", "default": ""},
    }

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _valid, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        host = task_vars["inventory_hostname"]
        try:
            refused = refusal_message(host, args["inputs"], task_vars, args["partial"])
        except StackError as exc:
            raise AnsibleActionFail(f"stack: {exc}") from exc
        if refused:
            raise AnsibleActionFail(f"stack: {refused}")
        try:
            model = build(
                host,
                args["inputs"],
                task_vars["groups"],
                task_vars["hostvars"],
                role_defaults(),
                partial=args["partial"],
            )
            add_etcd_passwords(model["etcd"], args["secrets_dir"])
        except (StackError, ValueError, OSError) as exc:
            raise AnsibleActionFail(f"stack: {exc}") from exc
        # The model holds the application's database passwords: the result is hidden once it
        # succeeded (a refusal above keeps its message visible).
        result.update(changed=False, ansible_facts={args["fact"]: model}, _ansible_no_log=True)
        return result
