#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: haproxy_server
short_description: Enable, disable or drain one HAProxy backend server through the runtime API
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Controls one server of one backend through HAProxy's runtime API (the admin-level stats
    socket) - administrative state and weight - and optionally waits until the change has taken
    effect - no current sessions left after a drain or disable, UP after an enable.
  - Reads the state first and changes only what differs. Run it on every load balancer of the
    group (it acts on the HAProxy of the host it runs on).
  - Administrative states survive reloads with the webinfra.distributed.haproxy role
    (server-state file written before each reload).
attributes:
  check_mode:
    support: full
    description: Reports what would change without sending commands.
  diff_mode:
    support: full
    description: Returns the server's state before and after.
options:
  socket:
    description: Path of the admin-level runtime API socket.
    type: path
    default: /run/haproxy/admin.sock
  backend:
    description: Backend name.
    type: str
    required: true
  server:
    description: Server name inside O(backend).
    type: str
    required: true
  state:
    description:
      - V(enabled) - takes traffic (runtime state C(ready)).
      - V(drain) - keeps current sessions, takes no new ones (runtime state C(drain)).
      - V(disabled) - maintenance; no traffic and no health checks (runtime state C(maint)).
      - Omit to change only O(weight).
    type: str
    choices: [enabled, disabled, drain]
  weight:
    description: Weight of the server (0-256).
    type: int
  wait:
    description:
      - Wait after the change - until the server has no current sessions (V(drain), V(disabled)) or
        is UP (V(enabled)).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait. On timeout the module fails with what is left (the session count, or the
        server's status) and leaves the server in the requested state (a drain stays drained).
    type: int
    default: 60
  wait_interval:
    description: Seconds between polls while waiting.
    type: float
    default: 0.5
"""

EXAMPLES = r"""
- name: Drain web-01 on every load balancer and wait for its sessions to end
  webinfra.distributed.haproxy_server:
    backend: webservers
    server: web-01
    state: drain
    wait: true
    wait_timeout: 120
  delegate_to: "{{ item }}"
  loop: "{{ groups['loadbalancers'] }}"

- name: Put it back and wait until its health checks pass
  webinfra.distributed.haproxy_server:
    backend: webservers
    server: web-01
    state: enabled
    wait: true
  delegate_to: "{{ item }}"
  loop: "{{ groups['loadbalancers'] }}"
"""

RETURN = r"""
commands:
  description: Runtime API commands sent (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["set server webservers/web-01 state drain"]
before:
  description: The server before the change.
  returned: always
  type: dict
  sample: {"status": "UP", "admin_state": "enabled", "weight": 1, "current_sessions": 3}
after:
  description: The server after the change (and the wait).
  returned: always
  type: dict
  sample: {"status": "DRAIN", "admin_state": "drain", "weight": 1, "current_sessions": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.haproxy_runtime import (
    RuntimeApiError,
    RuntimeClient,
    UnknownServer,
    WaitTimeout,
    ensure_server,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            backend=dict(type="str", required=True),
            server=dict(type="str", required=True),
            state=dict(type="str", choices=["enabled", "disabled", "drain"]),
            weight=dict(type="int"),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=60),
            wait_interval=dict(type="float", default=0.5),
        ),
        required_one_of=[("state", "weight")],
        supports_check_mode=True,
    )
    p = module.params
    if p["weight"] is not None and not 0 <= p["weight"] <= 256:
        module.fail_json(msg="weight must be between 0 and 256, got %d" % p["weight"])
    try:
        result = ensure_server(
            RuntimeClient(p["socket"]),
            p["backend"],
            p["server"],
            state=p["state"],
            weight=p["weight"],
            wait=p["wait"],
            wait_timeout=p["wait_timeout"],
            interval=p["wait_interval"],
            check_mode=module.check_mode,
        )
    except (RuntimeApiError, UnknownServer, WaitTimeout) as exc:
        module.fail_json(msg=str(exc))
    result["diff"] = {"before": result["before"], "after": result["after"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
