# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A server's role in a primary-replica cluster: writable primary or read-only.

`plan` is pure (state in, statements out) and unit-tested; `apply` reads the state through a
DB-API cursor with dict rows, waits for a GTID position when asked, and runs the plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.webinfra.distributed.plugins.module_utils.replication import Executor, read_status

SYSTEM_USERS = ("system user", "event_scheduler")
REPLICATION_COMMANDS = ("Binlog Dump", "Binlog Dump GTID", "Daemon")


class PromotionError(Exception):
    """The server could not be brought to the requested role; the message says why."""


def semisync_variable(flavor, variables):
    """Name of the primary-side semi-sync switch the server has, or None (plugin not loaded)."""
    for name in ("rpl_semi_sync_master_enabled", "rpl_semi_sync_source_enabled"):
        if name in variables:
            return name
    return None


def read_state(cursor, flavor, channel=""):
    cursor.execute(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
        "('read_only', 'super_read_only', 'rpl_semi_sync_master_enabled', 'rpl_semi_sync_source_enabled', "
        "'event_scheduler')"
    )
    rows = cursor.fetchall()
    variables = {row["Variable_name"].lower(): str(row["Value"]).upper() in ("ON", "1") for row in rows}
    # DISABLED (set at start-up) cannot be changed at run time: left alone.
    scheduler = [str(row["Value"]).upper() for row in rows if row["Variable_name"].lower() == "event_scheduler"]
    if scheduler and scheduler[0] == "DISABLED":
        variables.pop("event_scheduler", None)
    return {"variables": variables, "replica": read_status(cursor, flavor, channel)}


def plan(flavor, state, role, semisync=True, channel="", event_scheduler=None, keep_replica=False):
    """Statements that bring a server in `state` (from read_state) to `role`.

    The event scheduler runs only on the primary: turned on with it when `event_scheduler` is
    true, always off on a read-only server (an event's definer with SUPER or READ ONLY ADMIN
    writes past read_only). `keep_replica`: the caller stops and resets the replication itself
    (the HA agent, without waiting on a hung IO thread)."""
    variables = state["variables"]
    statements = []
    switch = semisync_variable(flavor, variables)
    if role == "primary":
        if state["replica"] is not None and not keep_replica:
            statements += [flavor.stop(channel), flavor.reset(channel)]
        if variables.get("super_read_only"):
            statements.append("SET GLOBAL super_read_only = OFF")
        if variables.get("read_only"):
            statements.append("SET GLOBAL read_only = OFF")
        if switch and semisync and not variables.get(switch):
            statements.append("SET GLOBAL %s = ON" % switch)
        if event_scheduler and "event_scheduler" in variables and not variables["event_scheduler"]:
            statements.append("SET GLOBAL event_scheduler = ON")
    elif role == "read_only":
        # Read-only first, semi-sync off after: turned off first, semi-sync would release the
        # commits waiting for an acknowledgement as successful, and new sessions would commit
        # with no replica until read_only is on.
        if "super_read_only" in variables and not flavor.is_mariadb:
            if not variables.get("super_read_only"):
                statements.append("SET GLOBAL super_read_only = ON")
        elif not variables.get("read_only"):
            statements.append("SET GLOBAL read_only = ON")
        if switch and variables.get(switch):
            statements.append("SET GLOBAL %s = OFF" % switch)
        if variables.get("event_scheduler"):
            statements.append("SET GLOBAL event_scheduler = OFF")
    else:
        raise PromotionError("unknown role %r (primary, read_only)" % role)
    return statements


def gtid_wait_statement(flavor, position, timeout):
    """(sql, args): returns 0 once the server applied `position`, -1 (MariaDB) / 1 (MySQL) on timeout."""
    if flavor.is_mariadb:
        return "SELECT MASTER_GTID_WAIT(%s, %s) AS result", [position, timeout]
    return "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS result", [position, timeout]


def current_position(cursor, flavor):
    if flavor.is_mariadb:
        cursor.execute("SELECT @@GLOBAL.gtid_current_pos AS pos")
    else:
        cursor.execute("SELECT @@GLOBAL.gtid_executed AS pos")
    return str(cursor.fetchone()["pos"] or "")


def client_connections(cursor):
    """Client sessions to end when a primary becomes read-only (not replication, not this one)."""
    cursor.execute(
        "SELECT ID AS id, USER AS user, COMMAND AS command FROM information_schema.PROCESSLIST "
        "WHERE ID <> CONNECTION_ID()"
    )
    return [
        row["id"]
        for row in cursor.fetchall() or []
        if row["user"] not in SYSTEM_USERS and row["command"] not in REPLICATION_COMMANDS
    ]


def _kill(cursor, thread):
    try:
        cursor.execute("KILL CONNECTION %s" % int(thread))
    except Exception:  # pylint: disable=broad-except  # the session ended meanwhile
        return False
    return True


def apply(
    cursor,
    flavor,
    role,
    semisync=True,
    wait_gtid=None,
    wait_timeout=30,
    kill_connections=False,
    channel="",
    check_mode=False,
    event_scheduler=None,
    keep_replica=False,
):
    """Bring the server to `role`; returns dict(changed, queries, killed, gtid_position)."""
    if wait_gtid:
        sql, args = gtid_wait_statement(flavor, wait_gtid, wait_timeout)
        cursor.execute(sql, args)
        if int(cursor.fetchone()["result"]) != 0:
            raise PromotionError(
                "the server did not apply GTID position %s within %s s (it is at %s); nothing was changed"
                % (wait_gtid, wait_timeout, current_position(cursor, flavor))
            )
    ex = Executor(cursor, check_mode)
    state = read_state(cursor, flavor, channel)
    for statement in plan(flavor, state, role, semisync, channel, event_scheduler, keep_replica):
        ex.run(statement)
    killed = []
    if role == "read_only" and kill_connections:
        for thread in client_connections(cursor):
            if not check_mode and not _kill(cursor, thread):
                continue
            killed.append(thread)
    return {
        "changed": bool(ex.queries or killed),
        "queries": ex.queries,
        "killed": killed,
        "gtid_position": current_position(cursor, flavor),
    }
