#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: replication_info
short_description: Replication facts of a MariaDB/MySQL server, in one schema across flavours
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Reads, never writes. Returns flavour and version, server_id, read-only state, binary log
    state and format, GTID positions, the replica status (threads, lag, last errors, source,
    GTID use) and the replicas connected when the server is a primary.
extends_documentation_fragment:
  - webinfra.distributed.mysql_connection
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  channel:
    description: Named replication channel (MySQL) or connection name (MariaDB). Empty for the default.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Read replication state
  webinfra.distributed.replication_info:
  register: repl

- name: Fail unless the replica is healthy
  ansible.builtin.assert:
    that:
      - repl.replica.io_running and repl.replica.sql_running
      - repl.replica.seconds_behind is not none and repl.replica.seconds_behind <= 1
"""

RETURN = r"""
flavor:
  description: V(mariadb) or V(mysql).
  returned: always
  type: str
version:
  description: Server version.
  returned: always
  type: str
server_id:
  description: The server's server_id.
  returned: always
  type: int
read_only:
  description: Whether read_only is on.
  returned: always
  type: bool
super_read_only:
  description: Whether super_read_only is on (MySQL; null on MariaDB).
  returned: always
  type: bool
log_bin:
  description: Whether the binary log is enabled.
  returned: always
  type: bool
binlog_format:
  description: Binary log format (ROW, MIXED, STATEMENT).
  returned: always
  type: str
log_replica_updates:
  description: Whether changes applied by replication are written to this server's binary log.
  returned: always
  type: bool
gtid:
  description:
    - GTID state. MariaDB - strict_mode, domain_id, binlog_pos, current_pos, replica_pos, executed.
      MySQL - enabled, executed.
  returned: always
  type: dict
is_replica:
  description: Whether replication is configured on this server.
  returned: always
  type: bool
is_primary:
  description: Writable and not replicating from another server.
  returned: always
  type: bool
replica:
  description: Normalised replica status (null when not a replica).
  returned: always
  type: dict
  contains:
    io_running:
      description: IO thread running.
      type: bool
    sql_running:
      description: SQL thread running.
      type: bool
    running:
      description: Both threads running.
      type: bool
    seconds_behind:
      description: Replication lag in seconds (null while a thread is stopped).
      type: int
    source_host:
      description: The primary's address.
      type: str
    source_port:
      description: The primary's port.
      type: int
    using_gtid:
      description: V(slave_pos), V(current_pos), V(auto_position) or V(no).
      type: str
    last_io_error:
      description: Last IO thread error text.
      type: str
    last_sql_error:
      description: Last SQL thread error text.
      type: str
    gtid_io_pos:
      description: GTID position received from the primary.
      type: str
replicas:
  description:
    - Replicas connected to this server (binlog dump threads), with the account each uses (C(user)).
    - Other binary-log readers appear too (the backup role's archive, C(mariadb-binlog)); their
      C(user) tells them apart.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_connection import (
    connection_argument_spec,
    open_session,
)
from ansible_collections.webinfra.distributed.plugins.module_utils.replication_info import gather


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(channel=dict(type="str", default=""))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    cursor, flavor = open_session(module)
    try:
        info = gather(cursor, flavor, module.params["channel"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except  # PyMySQL errors carry the server's text
        module.fail_json(msg="replication_info: %s" % exc)
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
