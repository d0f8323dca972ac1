import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_flavor import MARIADB, MYSQL, Flavor
from ansible_collections.webinfra.distributed.plugins.module_utils.promotion import (
    PromotionError,
    apply,
    gtid_wait_statement,
    plan,
)

MARIADB_1011 = Flavor(MARIADB, (10, 11, 6))
MYSQL_84 = Flavor(MYSQL, (8, 4, 2))


def state(replica=None, **variables):
    return {"variables": variables, "replica": replica}


def test_promote_a_mariadb_replica():
    current = state(replica={"running": True}, read_only=True, rpl_semi_sync_master_enabled=False)
    assert plan(MARIADB_1011, current, "primary") == [
        "STOP REPLICA",
        "RESET REPLICA ALL",
        "SET GLOBAL read_only = OFF",
        "SET GLOBAL rpl_semi_sync_master_enabled = ON",
    ]


def test_promote_is_idempotent_and_semisync_optional():
    assert plan(MARIADB_1011, state(read_only=False, rpl_semi_sync_master_enabled=True), "primary") == []
    assert (
        plan(MARIADB_1011, state(read_only=False, rpl_semi_sync_master_enabled=False), "primary", semisync=False) == []
    )
    # Without the plugin there is no switch to turn on.
    assert plan(MARIADB_1011, state(read_only=False), "primary") == []


def test_promote_mysql_turns_super_read_only_off_first():
    current = state(replica={"running": True}, read_only=True, super_read_only=True, rpl_semi_sync_source_enabled=False)
    assert plan(MYSQL_84, current, "primary") == [
        "STOP REPLICA",
        "RESET REPLICA ALL",
        "SET GLOBAL super_read_only = OFF",
        "SET GLOBAL read_only = OFF",
        "SET GLOBAL rpl_semi_sync_source_enabled = ON",
    ]


def test_read_only_mariadb_and_mysql():
    # read_only before semi-sync off: no commit is released as acknowledged without a replica.
    assert plan(MARIADB_1011, state(read_only=False, rpl_semi_sync_master_enabled=True), "read_only") == [
        "SET GLOBAL read_only = ON",
        "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
    ]
    assert plan(MARIADB_1011, state(read_only=True, rpl_semi_sync_master_enabled=False), "read_only") == []
    assert plan(MYSQL_84, state(read_only=False, super_read_only=False), "read_only") == [
        "SET GLOBAL super_read_only = ON"
    ]


def test_unknown_role():
    with pytest.raises(PromotionError):
        plan(MARIADB_1011, state(), "leader")


def test_gtid_wait_statement_per_flavour():
    assert gtid_wait_statement(MARIADB_1011, "0-1-5", 30) == (
        "SELECT MASTER_GTID_WAIT(%s, %s) AS result",
        ["0-1-5", 30],
    )
    assert gtid_wait_statement(MYSQL_84, "u:1-5", 30)[0].startswith("SELECT WAIT_FOR_EXECUTED_GTID_SET")


class FakeCursor:
    """Answers the statements apply() issues; records the rest."""

    def __init__(self, wait_result=0, read_only=True):
        self.executed = []
        self.wait_result = wait_result
        self.read_only = read_only
        self._rows = []

    def execute(self, sql, args=None):
        self.executed.append(sql)
        if "MASTER_GTID_WAIT" in sql:
            self._rows = [{"result": self.wait_result}]
        elif sql.startswith("SHOW GLOBAL VARIABLES"):
            self._rows = [{"Variable_name": "read_only", "Value": "ON" if self.read_only else "OFF"}]
        elif sql.startswith("SHOW REPLICA"):
            self._rows = []
        elif "gtid_current_pos" in sql:
            self._rows = [{"pos": "0-1-7"}]
        elif "PROCESSLIST" in sql:
            self._rows = [
                {"id": 11, "user": "app_writer", "command": "Query"},
                {"id": 12, "user": "repl", "command": "Binlog Dump GTID"},
                {"id": 13, "user": "system user", "command": "Daemon"},
            ]
        else:
            self._rows = []

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return self._rows


def test_apply_refuses_when_the_position_is_not_reached_and_changes_nothing():
    cursor = FakeCursor(wait_result=-1)
    with pytest.raises(PromotionError, match="0-1-9.*0-1-7"):
        apply(cursor, MARIADB_1011, "primary", wait_gtid="0-1-9", wait_timeout=1)
    assert not any(sql.startswith("SET GLOBAL") for sql in cursor.executed)


def test_apply_read_only_kills_client_sessions_only():
    cursor = FakeCursor(read_only=False)
    result = apply(cursor, MARIADB_1011, "read_only", kill_connections=True)
    assert result["queries"] == ["SET GLOBAL read_only = ON"]
    assert result["killed"] == [11]
    assert "KILL CONNECTION 11" in cursor.executed
    assert result["gtid_position"] == "0-1-7"


def test_apply_check_mode_executes_nothing():
    cursor = FakeCursor(read_only=True)
    result = apply(cursor, MARIADB_1011, "primary", check_mode=True)
    assert result == {
        "changed": True,
        "queries": ["SET GLOBAL read_only = OFF"],
        "killed": [],
        "gtid_position": "0-1-7",
    }
    assert "SET GLOBAL read_only = OFF" not in cursor.executed


def test_the_event_scheduler_runs_on_the_primary_only():
    replica = state(read_only=True, event_scheduler=False)
    assert "SET GLOBAL event_scheduler = ON" in plan(MARIADB_1011, replica, "primary", event_scheduler=True)
    assert "SET GLOBAL event_scheduler = ON" not in plan(MARIADB_1011, replica, "primary")
    primary = state(read_only=False, event_scheduler=True)
    assert plan(MARIADB_1011, primary, "read_only") == ["SET GLOBAL read_only = ON", "SET GLOBAL event_scheduler = OFF"]


def test_keep_replica_leaves_the_replication_to_the_caller():
    current = state(replica={"running": False}, read_only=True)
    assert plan(MARIADB_1011, current, "primary", semisync=False, keep_replica=True) == ["SET GLOBAL read_only = OFF"]
