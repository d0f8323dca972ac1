#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_state
short_description: Read systemd units, system accounts, paths and directories in one module run
version_added: 0.11.0
author: webinfra maintainers (@webinfra)
description:
  - Reads, in one module run, the state a role's tasks would otherwise ask for one module run
    at a time - whether its units are enabled and running, whether its system users and groups
    exist, what its paths are (type, mode, owner, link target) and which directories a directory
    holds - so that a converged host costs one read, and the role's changing tasks run only for
    what differs.
  - Also returns the host's number of online CPUs, so that a role can size its workers without
    gathering the hardware facts.
  - Never changes anything.
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  units:
    description:
      - systemd units to read (C(systemctl show)); a name without a suffix is a C(.service).
    type: list
    elements: str
    default: []
  users:
    description: System users to look up (the password database).
    type: list
    elements: str
    default: []
  groups:
    description: Groups to look up (the group database).
    type: list
    elements: str
    default: []
  paths:
    description: Paths to read (the path itself; a symbolic link is not followed).
    type: list
    elements: path
    default: []
  dirs:
    description: Directories whose subdirectories are listed (one level, newest first).
    type: list
    elements: path
    default: []
notes:
  - A unit systemd does not know reads as C(load=not-found), not running, not enabled.
"""

EXAMPLES = r"""
- name: Read HAProxy's unit and its runtime API socket
  webinfra.distributed.host_state:
    units: [haproxy]
    paths: [/run/haproxy/admin.sock]
  register: __state

- name: Enable and start HAProxy (only when it is not both already)
  ansible.builtin.systemd_service:
    name: haproxy
    enabled: true
    state: started
  when: "'haproxy' in __state.units_not_ready"
"""

RETURN = r"""
units:
  description:
    - Unit name (as given, without C(.service)) to load, active, sub, enabled (the unit file
      state), running (active) and ready (active and enabled).
  returned: always
  type: dict
  sample: {"haproxy": {"load": "loaded", "active": "active", "sub": "running",
                       "enabled": "enabled", "running": true, "ready": true}}
units_not_ready:
  description: The units asked, in order, that are not both enabled and active.
  returned: always
  type: list
  elements: str
  sample: ["webinfra-backup.timer"]
users:
  description: The users that exist, to uid, gid, group, home, shell and system (uid below 1000).
  returned: always
  type: dict
  sample: {"webapp": {"uid": 998, "gid": 998, "group": "webapp", "home": "/srv/webapp",
                      "shell": "/usr/sbin/nologin", "system": true}}
groups:
  description: The groups that exist, to gid, members and system (gid below 1000).
  returned: always
  type: dict
  sample: {"webapp": {"gid": 998, "members": [], "system": true}}
paths:
  description:
    - Every path asked to exists and, when it exists, type (file, directory, link, socket,
      other), mode, owner, group, size, mtime and, for a link, target (as written) and
      lnk_source (resolved to an absolute path, as the stat module has it).
  returned: always
  type: dict
  sample: {"/srv/webapp/current": {"exists": true, "type": "link", "target": "releases/1.4.0",
                                   "lnk_source": "/srv/webapp/releases/1.4.0", "mode": "0777",
                                   "owner": "root", "group": "root"}}
cpus:
  description: The host's online CPUs (what the hardware facts' C(processor_vcpus) counts).
  returned: always
  type: int
  sample: 4
dirs:
  description: Every directory asked to its subdirectories (name, path, mtime), newest first.
  returned: always
  type: dict
  sample: {"/srv/webapp/releases": [{"name": "1.4.0", "path": "/srv/webapp/releases/1.4.0",
                                     "mtime": 1796680000.0}]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.host_state import read_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            units=dict(type="list", elements="str", default=[]),
            users=dict(type="list", elements="str", default=[]),
            groups=dict(type="list", elements="str", default=[]),
            paths=dict(type="list", elements="path", default=[]),
            dirs=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    systemctl = module.get_bin_path("systemctl", required=bool(params["units"]))
    try:
        state = read_state(
            lambda argv: module.run_command(argv, environ_update={"LC_ALL": "C", "SYSTEMD_PAGER": ""}),
            systemctl,
            units=params["units"],
            users=params["users"],
            groups=params["groups"],
            paths=params["paths"],
            dirs=params["dirs"],
        )
    except RuntimeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
