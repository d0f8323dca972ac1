#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: haproxy_info
short_description: Backends and servers of HAProxy, read through the runtime API
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Reads every backend and its servers (status, administrative state, weight, sessions, last
    check) from the admin-level runtime API socket of the HAProxy on the host it runs on.
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  socket:
    description: Path of the admin-level runtime API socket.
    type: path
    default: /run/haproxy/admin.sock
"""

EXAMPLES = r"""
- name: Read HAProxy's backends
  webinfra.distributed.haproxy_info:
  register: lb

- name: Every web server is UP
  ansible.builtin.assert:
    that: lb.backends.webservers.servers | selectattr('status', 'ne', 'UP') | list | length == 0
"""

RETURN = r"""
backends:
  description:
    - Backend name to its status and servers (server, status, admin_state, weight,
      current_sessions, check_status).
  returned: always
  type: dict
  sample: {"webservers": {"status": "UP", "servers": [{"server": "web-01", "status": "UP",
                                                       "admin_state": "enabled"}]}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.haproxy_runtime import (
    RuntimeApiError,
    RuntimeClient,
    backends_view,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(socket=dict(type="path", default="/run/haproxy/admin.sock")),
        supports_check_mode=True,
    )
    try:
        backends = backends_view(RuntimeClient(module.params["socket"]))
    except RuntimeApiError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, backends=backends)


if __name__ == "__main__":
    main()
