# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replica state: normalised status, the delta to a desired source, and applying it.

Every function takes a DB-API cursor returning dict rows (PyMySQL DictCursor) and, where it
writes, `check_mode`: in check mode the statements are computed and returned, never executed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

# IO-thread errors that retrying will not fix: access denied (1045, 1044), host not allowed
# (1130), authentication plugin or TLS requirement (2061, 1045 variants), and binary log
# positions the primary no longer has (1236).
FATAL_IO_ERRNOS = frozenset([1044, 1045, 1130, 1236, 2061])


class ReplicationError(Exception):
    """Replication could not be brought to the requested state; the message says why."""


# Canonical status keys -> candidate column names (MariaDB / old MySQL, MySQL 8.0.22+).
STATUS_COLUMNS = {
    "io_running": ("Slave_IO_Running", "Replica_IO_Running"),
    "sql_running": ("Slave_SQL_Running", "Replica_SQL_Running"),
    "source_host": ("Master_Host", "Source_Host"),
    "source_port": ("Master_Port", "Source_Port"),
    "source_user": ("Master_User", "Source_User"),
    "connect_retry": ("Connect_Retry", "Source_Connect_Retry"),
    "seconds_behind": ("Seconds_Behind_Master", "Seconds_Behind_Source"),
    "last_io_errno": ("Last_IO_Errno",),
    "last_io_error": ("Last_IO_Error",),
    "last_sql_errno": ("Last_SQL_Errno",),
    "last_sql_error": ("Last_SQL_Error",),
    "source_log_file": ("Master_Log_File", "Source_Log_File"),
    "read_source_log_pos": ("Read_Master_Log_Pos", "Read_Source_Log_Pos"),
    "exec_source_log_pos": ("Exec_Master_Log_Pos", "Exec_Source_Log_Pos"),
    "ssl": ("Master_SSL_Allowed", "Source_SSL_Allowed"),
    "ssl_ca": ("Master_SSL_CA_File", "Source_SSL_CA_File"),
    "ssl_cert": ("Master_SSL_Cert", "Source_SSL_Cert"),
    "ssl_key": ("Master_SSL_Key", "Source_SSL_Key"),
    "ssl_verify_server_cert": ("Master_SSL_Verify_Server_Cert", "Source_SSL_Verify_Server_Cert"),
    "source_server_id": ("Master_Server_Id", "Source_Server_Id"),
    "using_gtid": ("Using_Gtid", "Auto_Position"),
    "gtid_io_pos": ("Gtid_IO_Pos", "Retrieved_Gtid_Set"),
    "executed_gtid_set": ("Gtid_Slave_Pos", "Executed_Gtid_Set"),
    "channel": ("Connection_name", "Channel_Name"),
    "sql_delay": ("SQL_Delay",),
    "sql_state": ("Slave_SQL_Running_State", "Replica_SQL_Running_State"),
}

# Settings compared between the desired source and SHOW ... STATUS (password cannot be read).
COMPARED = (
    "host",
    "port",
    "user",
    "use_gtid",
    "connect_retry",
    "ssl",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_verify_server_cert",
)
STATUS_FOR_SETTING = {
    "host": "source_host",
    "port": "source_port",
    "user": "source_user",
    "use_gtid": "using_gtid",
    "connect_retry": "connect_retry",
    "ssl": "ssl",
    "ssl_ca": "ssl_ca",
    "ssl_cert": "ssl_cert",
    "ssl_key": "ssl_key",
    "ssl_verify_server_cert": "ssl_verify_server_cert",
}


def _yes(value):
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("yes", "1", "on", "true")


def _int_or_none(value):
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def normalize_status(row):
    """One flavour-independent dict from a SHOW SLAVE/REPLICA STATUS row (None: not a replica)."""
    if not row:
        return None
    out = {}
    for key, candidates in STATUS_COLUMNS.items():
        value = None
        for column in candidates:
            if column in row:
                value = row[column]
                break
        out[key] = value
    for key in (
        "source_port",
        "connect_retry",
        "seconds_behind",
        "last_io_errno",
        "last_sql_errno",
        "read_source_log_pos",
        "exec_source_log_pos",
        "source_server_id",
        "sql_delay",
    ):
        out[key] = _int_or_none(out[key])
    out["io_running"] = _yes(out["io_running"])
    io_state = row.get("Slave_IO_Running", row.get("Replica_IO_Running"))
    out["io_connecting"] = str(io_state or "").lower() == "connecting"
    out["sql_running"] = _yes(out["sql_running"])
    out["ssl"] = _yes(out["ssl"])
    out["ssl_verify_server_cert"] = _yes(out["ssl_verify_server_cert"])
    using = out["using_gtid"]
    if "Using_Gtid" in row:  # MariaDB: No / Slave_Pos / Current_Pos
        out["using_gtid"] = str(using or "no").lower()
    else:  # MySQL: Auto_Position 0/1
        out["using_gtid"] = "auto_position" if _yes(using) else "no"
    for key in (
        "last_io_error",
        "last_sql_error",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "source_host",
        "source_user",
        "gtid_io_pos",
        "executed_gtid_set",
        "channel",
        "source_log_file",
        "sql_state",
    ):
        out[key] = "" if out[key] is None else str(out[key])
    out["running"] = out["io_running"] and out["sql_running"]
    return out


def desired_gtid_status(flavor, use_gtid):
    """What SHOW ... STATUS reports for a `use_gtid` setting on this flavour."""
    if flavor.is_mariadb:
        if use_gtid in (True, "slave_pos"):
            return "slave_pos"
        if use_gtid == "current_pos":
            return "current_pos"
        return "no"
    return "auto_position" if use_gtid not in (False, "no") else "no"


def diff_source(status, desired, flavor):
    """Settings (canonical names) whose current value differs from `desired` (None = unset)."""
    if status is None:
        return [key for key in COMPARED if desired.get(key) is not None]
    changed = []
    for key in COMPARED:
        want = desired.get(key)
        if want is None:
            continue
        have = status.get(STATUS_FOR_SETTING[key])
        if key == "use_gtid":
            want = desired_gtid_status(flavor, want)
        elif key in ("port", "connect_retry"):
            want, have = int(want), _int_or_none(have)
        elif key in ("ssl", "ssl_verify_server_cert"):
            want, have = bool(want), bool(have)
        else:
            want, have = str(want), str(have or "")
        if want != have:
            changed.append(key)
    return changed


MASK = "********"


def mask(sql, args):
    """The statement as reported to the user, its parameters written in as SQL strings."""
    text = sql
    for value in args:
        text = text.replace("%s", "'%s'" % value.replace("'", "''"), 1)
    return text


def render_change(flavor, desired, channel):
    """(sql, args, shown): CHANGE statement with args, and its text with the password masked."""
    sql, args = flavor.change_source(desired, channel)
    masked = dict(desired, password=MASK) if desired.get("password") is not None else desired
    return sql, args, mask(*flavor.change_source(masked, channel))


def read_status(cursor, flavor, channel=""):
    cursor.execute(flavor.show_status(channel))
    row = cursor.fetchone()
    return normalize_status(row)


def public_view(status):
    """Status subset shown in diff/before/after (stable keys, no noise)."""
    if status is None:
        return {"configured": False}
    keys = (
        "source_host",
        "source_port",
        "source_user",
        "using_gtid",
        "connect_retry",
        "ssl",
        "ssl_ca",
        "ssl_verify_server_cert",
        "io_running",
        "sql_running",
    )
    view = {key: status.get(key) for key in keys}
    view["configured"] = True
    return view


class Executor(object):
    """Runs (or, in check mode, only records) statements; keeps what the user sees."""

    def __init__(self, cursor, check_mode):
        self.cursor = cursor
        self.check_mode = check_mode
        self.queries = []

    def run(self, sql, args=None, shown=None):
        self.queries.append(shown or sql)
        if not self.check_mode:
            self.cursor.execute(sql, args or None)


def desired_from_params(params):
    """Canonical source settings from the replication module's parameters."""
    use_gtid = params.get("use_gtid", "auto")
    desired = {
        "host": params.get("primary_host"),
        "port": params.get("primary_port"),
        "user": params.get("primary_user"),
        "password": params.get("primary_password"),
        "use_gtid": {"auto": True, "no": False}.get(use_gtid, use_gtid),
        "connect_retry": params.get("connect_retry"),
        "heartbeat_period": params.get("heartbeat_period"),
        "ssl": params.get("primary_ssl"),
        "ssl_ca": params.get("primary_ssl_ca"),
        "ssl_cert": params.get("primary_ssl_cert"),
        "ssl_key": params.get("primary_ssl_key"),
        "ssl_verify_server_cert": params.get("primary_ssl_verify_server_cert"),
    }
    if use_gtid == "no":
        desired["log_file"] = params.get("primary_log_file")
        desired["log_pos"] = params.get("primary_log_pos")
    return desired


def ensure_replica(
    cursor,
    flavor,
    desired,
    state="running",
    channel="",
    check_mode=False,
    wait_timeout=60,
    initial_gtid_pos=None,
    sleep=time.sleep,
    clock=time.time,
):
    """Bring the replica to `state` with the source settings in `desired`.

    Returns dict(changed, queries, before, after, status). Raises ReplicationError with the
    replica's own error text when the threads do not run within `wait_timeout` seconds.
    """
    status = read_status(cursor, flavor, channel)
    before = public_view(status)
    ex = Executor(cursor, check_mode)

    if state == "absent":
        if status is not None:
            ex.run(flavor.stop(channel))
            ex.run(flavor.reset(channel))
        return _result(ex, before, {"configured": False}, None)

    differs = diff_source(status, desired, flavor)
    # A replica whose IO thread stopped on an error (wrong password, unreachable source) gets
    # its source settings applied again: the password cannot be read back to compare.
    broken = (
        status is not None
        and not status["running"]
        and bool(status["last_io_error"] or status["last_sql_error"])
        and state == "running"
    )
    reconfigure = bool(differs) or broken

    if reconfigure:
        if status is not None and (status["io_running"] or status["sql_running"] or status["io_connecting"]):
            ex.run(flavor.stop(channel))
        if status is None and initial_gtid_pos:
            variable = "gtid_slave_pos" if flavor.is_mariadb else "gtid_purged"
            ex.run(
                "SET GLOBAL %s = %%s" % variable,
                [initial_gtid_pos],
                "SET GLOBAL %s = '%s'" % (variable, initial_gtid_pos),
            )
        sql, args, shown = render_change(flavor, desired, channel)
        ex.run(sql, args, shown)

    if state == "running":
        if reconfigure or status is None or not status["running"]:
            ex.run(flavor.start(channel))
    elif state == "stopped":
        if not reconfigure and status is not None and (status["io_running"] or status["sql_running"]):
            ex.run(flavor.stop(channel))

    if check_mode or not ex.queries:
        after = dict(before)
        if ex.queries:
            after.update({"configured": True, "io_running": state == "running", "sql_running": state == "running"})
            for key in differs:
                after[STATUS_FOR_SETTING[key]] = (
                    desired_gtid_status(flavor, desired[key]) if key == "use_gtid" else desired[key]
                )
        return _result(ex, before, after, status)

    final = read_status(cursor, flavor, channel)
    if state == "running":
        final = wait_running(cursor, flavor, channel, wait_timeout, sleep, clock)
    return _result(ex, before, public_view(final), final)


def wait_running(cursor, flavor, channel, timeout, sleep=time.sleep, clock=time.time):
    """Wait until both threads run; fail with the replica's own errors otherwise."""
    deadline = clock() + timeout
    while True:
        status = read_status(cursor, flavor, channel)
        if status is None:
            raise ReplicationError("the server has no replication configured after CHANGE/START")
        if status["running"]:
            return status
        # A stopped thread with an error, or an IO error retrying cannot fix, will not heal by waiting.
        io_fatal = status["last_io_error"] and (
            not status["io_connecting"] or status["last_io_errno"] in FATAL_IO_ERRNOS
        )
        if (not status["io_running"] and io_fatal) or (not status["sql_running"] and status["last_sql_error"]):
            raise ReplicationError(describe_failure(status))
        if clock() >= deadline:
            raise ReplicationError(
                "replication threads not running after %ss: %s" % (timeout, describe_failure(status))
            )
        sleep(1)


def describe_failure(status):
    parts = [
        "io_running=%s" % ("yes" if status["io_running"] else ("connecting" if status["io_connecting"] else "no")),
        "sql_running=%s" % ("yes" if status["sql_running"] else "no"),
    ]
    if status["last_io_error"]:
        parts.append("Last_IO_Error (%s): %s" % (status["last_io_errno"], status["last_io_error"]))
    if status["last_sql_error"]:
        parts.append("Last_SQL_Error (%s): %s" % (status["last_sql_errno"], status["last_sql_error"]))
    return "; ".join(parts)


def _result(ex, before, after, status):
    return {
        "changed": bool(ex.queries),
        "queries": ex.queries,
        "diff": {"before": before, "after": after},
        "status": status,
    }
