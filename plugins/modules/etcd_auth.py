#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_auth
short_description: Users, roles and authentication of an etcd cluster (role-based access control)
version_added: 0.10.0
author: webinfra maintainers (@webinfra)
description:
  - Brings an etcd v3 cluster's role-based access control to the wanted state through one
    member's JSON gateway (HTTPS with a client certificate) - the V(root) user with the root role,
    one role per wanted user with read-write access to that user's key prefixes only, each user's
    password, and authentication enabled. Run it once per cluster (C(run_once)).
  - Reads the users and roles first and sends only what differs. A wanted user's password is
    checked by authenticating it, and set again when it does not work.
  - Touches only the users and roles it manages - the wanted ones, V(root), and those whose name
    starts with O(managed_prefix), which are removed once no longer wanted. Other users and roles
    are left as they are.
  - etcd's JSON gateway does not take a client certificate's name as the user - clients
    authenticate with a password (the tokens expire; see the etcd role's C(etcd_auth_token)).
attributes:
  check_mode:
    support: full
    description: Reports the requests that would be sent without sending them.
  diff_mode:
    support: none
    description: The requests sent are returned instead.
options:
  host:
    description: Address of the member whose client port is used.
    type: str
    required: true
  port:
    description: The member's client port.
    type: int
    default: 2379
  ca_file:
    description: CA certificate that signed the member's certificate.
    type: path
    required: true
  cert_file:
    description: Client certificate the member trusts (PEM).
    type: path
    required: true
  key_file:
    description: Private key of O(cert_file).
    type: path
    required: true
  root_password:
    description:
      - Password of etcd's V(root) user. Set when authentication is enabled by this module; later
        runs authenticate with it, and fail naming this option when etcd refuses it.
    type: str
    required: true
  users:
    description: The users to have, each with a role of its own name.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User (and role) name.
        type: str
        required: true
      password:
        description: The user's password.
        type: str
        required: true
      prefixes:
        description: Key prefixes the user may read and write (nothing else).
        type: list
        elements: str
        required: true
  managed_prefix:
    description:
      - Users and roles whose name starts with this are managed - removed when not in O(users).
        Empty - none is removed.
    type: str
    default: ""
  enable:
    description:
      - Turn authentication on (with V(root) first). V(false) prepares users and roles with
        authentication still off - for clients that get their credentials later in the same run
        (clients without credentials stop working the moment it is on). Never turns it off.
    type: bool
    default: true
  update_password:
    description:
      - V(always) - a user whose password does not work is given the one in O(users).
      - V(on_create) - only new users get their password; existing users whose password does not work are left
        as they are and listed in RV(passwords_pending). A rotation in two steps - first the clients get the new
        password (they keep the old one until it fails), then a run with V(always) changes it in etcd.
    type: str
    choices: [always, on_create]
    default: always
    version_added: 0.10.0
  timeout:
    description: Seconds to wait for each answer of etcd.
    type: float
    default: 10
requirements:
  - etcd 3.4 or later (the /v3/ JSON gateway)
notes:
  - The requests that change access run as V(root) once authentication is enabled.
seealso:
  - name: etcd role-based access control
    description: etcd's guide to users, roles and authentication.
    link: https://etcd.io/docs/v3.5/op-guide/authentication/rbac/
"""

EXAMPLES = r"""
- name: Each HA agent its own etcd user, with read-write access to its cluster's prefix only
  webinfra.distributed.etcd_auth:
    host: 10.0.0.11
    ca_file: /etc/etcd/tls/ca.pem
    cert_file: /etc/etcd/tls/member.pem
    key_file: /etc/etcd/tls/member.key
    root_password: "{{ etcd_root_password }}"
    managed_prefix: webinfra-
    users:
      - name: webinfra-ha-db-01
        password: "{{ db01_etcd_password }}"
        prefixes: [/webinfra/main/]
  run_once: true
  no_log: true
"""

RETURN = r"""
requests:
  description: The requests sent (or that would be sent in check mode), passwords left out.
  returned: always
  type: list
  elements: str
  sample: ['auth/role/add {"name": "webinfra-ha-db-01"}', 'auth/enable {}']
enabled:
  description: Whether authentication is enabled after the run (in check mode - before it).
  returned: success
  type: bool
  sample: true
passwords_pending:
  description:
    - Existing users of O(users) whose password does not work and was left unchanged (O(update_password=on_create));
      empty otherwise.
  returned: success
  type: list
  elements: str
  sample: [webinfra-ha-db-02]
  version_added: 0.10.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.etcd_auth import (
    EtcdAuthError,
    Gateway,
    converge,
    describe,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=2379),
            ca_file=dict(type="path", required=True),
            cert_file=dict(type="path", required=True),
            key_file=dict(type="path", required=True),
            root_password=dict(type="str", required=True, no_log=True),
            users=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    password=dict(type="str", required=True, no_log=True),
                    prefixes=dict(type="list", elements="str", required=True, no_log=False),
                ),
            ),
            managed_prefix=dict(type="str", default=""),
            enable=dict(type="bool", default=True),
            update_password=dict(type="str", default="always", choices=["always", "on_create"]),
            timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for user in p["users"]:
        if user["name"] == "root" or not user["name"]:
            module.fail_json(msg="users: %r is not a name this module may manage (root is its own)" % user["name"])
        if not user["prefixes"] or any(not prefix.startswith("/") for prefix in user["prefixes"]):
            module.fail_json(
                msg="users: %s needs prefixes that start with / (is %r)" % (user["name"], user["prefixes"])
            )
    gateway = Gateway(p["host"], p["port"], p["ca_file"], p["cert_file"], p["key_file"], timeout=p["timeout"])
    try:
        pending = [] if p["update_password"] == "on_create" else None  # noqa: S105 - a choice, not a password
        requests = converge(
            gateway,
            p["root_password"],
            p["users"],
            p["managed_prefix"],
            module.check_mode,
            enable=p["enable"],
            pending=pending,
        )
    except EtcdAuthError as exc:
        text = str(exc)
        if "authentication failed" in text or "invalid username or password" in text:
            text = "etcd refuses root_password for its root user (authentication is enabled): %s" % text
        module.fail_json(msg=text)
    enabled = ("auth/enable", {}) in requests and not module.check_mode
    enabled = enabled or gateway.token is not None
    module.exit_json(
        changed=bool(requests),
        requests=[describe(r) for r in requests],
        enabled=enabled,
        passwords_pending=sorted(pending or []),
    )


if __name__ == "__main__":
    main()
