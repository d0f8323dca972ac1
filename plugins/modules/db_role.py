#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: db_role
short_description: Promote a MariaDB/MySQL server to writable primary, or make it read-only
version_added: 0.4.0
author: webinfra maintainers (@webinfra)
description:
  - V(primary) stops and forgets replication (C(RESET ... ALL)), turns C(read_only) (and MySQL's
    C(super_read_only)) off and turns on the waiting side of semi-synchronous replication.
  - V(read_only) turns C(read_only) on (C(super_read_only) on MySQL) and the semi-sync waiting
    side off; with O(kill_connections) it also ends the client sessions, so no write started
    before continues.
  - With O(wait_gtid), first waits until the server has applied that GTID position
    (C(MASTER_GTID_WAIT) on MariaDB, C(WAIT_FOR_EXECUTED_GTID_SET) on MySQL) and fails without
    changing anything when it does not within O(wait_timeout) seconds.
  - Only what differs is changed. The settings are runtime ones; the server's configuration
    file decides the state after a restart.
  - Tested against MariaDB 10.11 and 11.8; the MySQL 8 statements are covered by unit tests only.
extends_documentation_fragment:
  - webinfra.distributed.mysql_connection
attributes:
  check_mode:
    support: full
    description: Returns the statements without executing them (the GTID wait still runs).
  diff_mode:
    support: none
    description: Not supported; RV(queries) lists what changed.
options:
  role:
    description: The role to give the server.
    type: str
    choices: [primary, read_only]
    required: true
  semisync:
    description: With O(role=primary), turn the semi-sync waiting side on when its plugin is loaded.
    type: bool
    default: true
  kill_connections:
    description: With O(role=read_only), end every client session except replication and this one.
    type: bool
    default: false
  wait_gtid:
    description: GTID position the server must have applied before its role changes.
    type: str
  wait_timeout:
    description: Seconds to wait for O(wait_gtid).
    type: int
    default: 30
  channel:
    description: Replication channel (MySQL) or connection name (MariaDB) to stop on promotion.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Stop writes on the old primary (and end its sessions)
  webinfra.distributed.db_role:
    role: read_only
    kill_connections: true
  register: old

- name: Promote the replica once it has everything the old primary wrote
  webinfra.distributed.db_role:
    role: primary
    wait_gtid: "{{ old.gtid_position }}"
    wait_timeout: 30
"""

RETURN = r"""
queries:
  description: Statements executed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF",
           "SET GLOBAL rpl_semi_sync_master_enabled = ON"]
killed:
  description: Ids of the client sessions ended.
  returned: always
  type: list
  elements: int
gtid_position:
  description: The server's GTID position after the change (MariaDB C(gtid_current_pos), MySQL C(gtid_executed)).
  returned: always
  type: str
  sample: 0-1-1234
flavor:
  description: Server flavour, V(mariadb) or V(mysql).
  returned: always
  type: str
version:
  description: Server version.
  returned: always
  type: str
  sample: 10.11.6
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_connection import (
    connection_argument_spec,
    open_session,
)
from ansible_collections.webinfra.distributed.plugins.module_utils.promotion import PromotionError, apply


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        role=dict(type="str", choices=["primary", "read_only"], required=True),
        semisync=dict(type="bool", default=True),
        kill_connections=dict(type="bool", default=False),
        wait_gtid=dict(type="str"),
        wait_timeout=dict(type="int", default=30),
        channel=dict(type="str", default=""),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    cursor, flavor = open_session(module)
    params = module.params
    try:
        result = apply(
            cursor,
            flavor,
            params["role"],
            semisync=params["semisync"],
            wait_gtid=params["wait_gtid"],
            wait_timeout=params["wait_timeout"],
            kill_connections=params["kill_connections"],
            channel=params["channel"],
            check_mode=module.check_mode,
        )
    except PromotionError as exc:
        module.fail_json(msg="db_role: %s" % exc)
    except Exception as exc:  # pylint: disable=broad-except  # PyMySQL errors carry the server's text
        module.fail_json(msg="db_role: %s" % exc)
    result.update(flavor=flavor.name, version=flavor.version_string)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
