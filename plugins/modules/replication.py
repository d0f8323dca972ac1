#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: replication
short_description: Make a MariaDB/MySQL server a replica of a primary, idempotently
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Points a server at its primary and starts, stops or removes replication, changing only
    what differs. No C(CHANGE MASTER) is issued when the source settings match and both
    replication threads run.
  - After starting, waits until the IO and SQL threads both run; fails with the replica's own
    C(Last_IO_Error)/C(Last_SQL_Error) text otherwise.
  - A replica whose threads stopped on an error (for example a wrong password) gets its source
    settings applied again on the next run, so correcting the input repairs it.
  - SQL follows the server's flavour and version. MariaDB uses C(CHANGE MASTER TO ... MASTER_USE_GTID);
    MySQL 8.0.23 and later, 8.4 included, uses C(CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION).
extends_documentation_fragment:
  - webinfra.distributed.mysql_connection
attributes:
  check_mode:
    support: full
    description: Computes and returns the statements without executing them.
  diff_mode:
    support: full
    description: Returns the replica's source settings and thread states before and after.
options:
  state:
    description:
      - V(running) configures replication and starts both threads.
      - V(stopped) configures replication and leaves the threads stopped.
      - V(absent) stops replication and forgets its configuration (C(RESET ... ALL)).
    type: str
    choices: [running, stopped, absent]
    default: running
  primary_host:
    description: Address of the primary. Required unless O(state=absent).
    type: str
  primary_port:
    description: Port of the primary.
    type: int
    default: 3306
  primary_user:
    description: Replication user on the primary. Required unless O(state=absent).
    type: str
  primary_password:
    description:
      - Password of O(primary_user). It cannot be read back from the server, so it is applied
        whenever the source is (re)configured, and shown masked in RV(queries).
    type: str
  use_gtid:
    description:
      - V(auto) is MariaDB C(MASTER_USE_GTID=slave_pos) or MySQL C(SOURCE_AUTO_POSITION=1).
      - V(slave_pos) and V(current_pos) are the MariaDB modes (on MySQL both mean auto-position).
      - V(no) replicates from O(primary_log_file)/O(primary_log_pos).
    type: str
    choices: [auto, slave_pos, current_pos, 'no']
    default: auto
  primary_log_file:
    description: Binary log file to start from with O(use_gtid=no).
    type: str
  primary_log_pos:
    description: Position in O(primary_log_file) to start from with O(use_gtid=no).
    type: int
  initial_gtid_pos:
    description:
      - GTID position to start from, applied only while the server has no replication configured
        (seeding a replica from a dump), with C(SET GLOBAL gtid_slave_pos) on MariaDB or
        C(SET GLOBAL gtid_purged) on MySQL. Ignored once replication exists.
    type: str
  primary_ssl:
    description: Connect to the primary over TLS.
    type: bool
  primary_ssl_ca:
    description: CA file (on the replica) the primary's certificate is verified against.
    type: path
  primary_ssl_cert:
    description: Client certificate file (on the replica).
    type: path
  primary_ssl_key:
    description: Client key file (on the replica).
    type: path
  primary_ssl_verify_server_cert:
    description: Verify that the primary's certificate matches O(primary_host).
    type: bool
  connect_retry:
    description: Seconds between reconnection attempts of the IO thread.
    type: int
    default: 10
  heartbeat_period:
    description:
      - Seconds between heartbeats from the primary. Applied when the source is configured; not
        compared afterwards (servers do not report it in the replica status).
    type: float
  channel:
    description: Named replication channel (MySQL) or connection name (MariaDB multi-source). Empty for the default.
    type: str
    default: ''
  wait_timeout:
    description: Seconds to wait for both replication threads to run after starting them.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Replicate from the primary with GTID
  webinfra.distributed.replication:
    primary_host: 10.0.0.11
    primary_user: repl
    primary_password: "{{ vault_repl_password }}"

- name: Seed position from a dump, then replicate over TLS
  webinfra.distributed.replication:
    primary_host: db-01.example.com
    primary_user: repl
    primary_password: "{{ vault_repl_password }}"
    initial_gtid_pos: "0-1-1234"
    primary_ssl: true
    primary_ssl_ca: /etc/mysql/ssl/ca.pem
    primary_ssl_verify_server_cert: true

- name: Stop replicating and forget the source
  webinfra.distributed.replication:
    state: absent
"""

RETURN = r"""
queries:
  description: Statements executed (or, in check mode, that would be), passwords masked.
  returned: always
  type: list
  elements: str
  sample: ["STOP REPLICA", "CHANGE MASTER TO MASTER_HOST = '10.0.0.11', MASTER_PASSWORD = '********'", "START REPLICA"]
status:
  description: The replica status after the change, normalised across flavours (null when not a replica).
  returned: always
  type: dict
  sample: {"io_running": true, "sql_running": true, "seconds_behind": 0, "source_host": "10.0.0.11",
           "using_gtid": "slave_pos", "last_io_error": "", "last_sql_error": ""}
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
from ansible_collections.webinfra.distributed.plugins.module_utils.replication import (
    ReplicationError,
    desired_from_params,
    ensure_replica,
)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["running", "stopped", "absent"], default="running"),
        primary_host=dict(type="str"),
        primary_port=dict(type="int", default=3306),
        primary_user=dict(type="str"),
        primary_password=dict(type="str", no_log=True),
        use_gtid=dict(type="str", choices=["auto", "slave_pos", "current_pos", "no"], default="auto"),
        primary_log_file=dict(type="str"),
        primary_log_pos=dict(type="int"),
        initial_gtid_pos=dict(type="str"),
        primary_ssl=dict(type="bool"),
        primary_ssl_ca=dict(type="path"),
        primary_ssl_cert=dict(type="path"),
        primary_ssl_key=dict(type="path"),
        primary_ssl_verify_server_cert=dict(type="bool"),
        connect_retry=dict(type="int", default=10),
        heartbeat_period=dict(type="float"),
        channel=dict(type="str", default=""),
        wait_timeout=dict(type="int", default=60),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[
            ("state", "running", ["primary_host", "primary_user"]),
            ("state", "stopped", ["primary_host", "primary_user"]),
            ("use_gtid", "no", ["primary_log_file", "primary_log_pos"]),
        ],
    )
    cursor, flavor = open_session(module)
    try:
        result = ensure_replica(
            cursor,
            flavor,
            desired_from_params(module.params),
            state=module.params["state"],
            channel=module.params["channel"],
            check_mode=module.check_mode,
            wait_timeout=module.params["wait_timeout"],
            initial_gtid_pos=module.params["initial_gtid_pos"],
        )
    except (ReplicationError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except  # PyMySQL errors carry the server's text
        module.fail_json(msg="replication: %s" % exc)
    result.update(flavor=flavor.name, version=flavor.version_string)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
