import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_flavor import MARIADB, MYSQL, Flavor
from ansible_collections.webinfra.distributed.plugins.module_utils.replication import (
    ReplicationError,
    desired_from_params,
    diff_source,
    ensure_replica,
    normalize_status,
)

MARIADB_1011 = Flavor(MARIADB, (10, 11, 6))
MYSQL_84 = Flavor(MYSQL, (8, 4, 2))


def mariadb_row(**overrides):
    row = {
        "Slave_IO_Running": "Yes",
        "Slave_SQL_Running": "Yes",
        "Master_Host": "10.0.0.1",
        "Master_Port": 3306,
        "Master_User": "repl",
        "Connect_Retry": 10,
        "Seconds_Behind_Master": 0,
        "Last_IO_Errno": 0,
        "Last_IO_Error": "",
        "Last_SQL_Errno": 0,
        "Last_SQL_Error": "",
        "Master_SSL_Allowed": "No",
        "Master_SSL_CA_File": "",
        "Master_SSL_Verify_Server_Cert": "No",
        "Using_Gtid": "Slave_Pos",
        "Gtid_IO_Pos": "0-1-42",
        "Connection_name": "",
    }
    row.update(overrides)
    return row


def mysql_row(**overrides):
    row = {
        "Replica_IO_Running": "Yes",
        "Replica_SQL_Running": "Yes",
        "Source_Host": "10.0.0.1",
        "Source_Port": 3306,
        "Source_User": "repl",
        "Source_Connect_Retry": 10,
        "Seconds_Behind_Source": 3,
        "Last_IO_Errno": 0,
        "Last_IO_Error": "",
        "Last_SQL_Errno": 0,
        "Last_SQL_Error": "",
        "Source_SSL_Allowed": "Yes",
        "Source_SSL_CA_File": "/ca.pem",
        "Source_SSL_Verify_Server_Cert": "Yes",
        "Auto_Position": 1,
        "Retrieved_Gtid_Set": "uuid:1-5",
        "Executed_Gtid_Set": "uuid:1-5",
        "Channel_Name": "",
    }
    row.update(overrides)
    return row


class FakeCursor:
    """Answers SHOW ... STATUS from a queue of rows and records every other statement."""

    def __init__(self, *status_rows, fail_on=None):
        self.status_rows = list(status_rows)
        self.executed = []
        self._last = None
        self.fail_on = fail_on

    def execute(self, sql, args=None):
        if self.fail_on and sql.startswith(self.fail_on):
            raise RuntimeError("boom")
        if "STATUS" in sql and sql.startswith("SHOW"):
            self._last = self.status_rows.pop(0) if len(self.status_rows) > 1 else self.status_rows[0]
        else:
            self.executed.append((sql, args))
            self._last = None

    def fetchone(self):
        return self._last


DESIRED = desired_from_params(
    {
        "primary_host": "10.0.0.1",
        "primary_port": 3306,
        "primary_user": "repl",
        "primary_password": "pw",
        "use_gtid": "auto",
        "connect_retry": 10,
    }
)


def test_normalize_mariadb_and_mysql_to_one_schema():
    a = normalize_status(mariadb_row())
    b = normalize_status(mysql_row())
    assert set(a) == set(b)
    assert a["running"] and b["running"]
    assert a["using_gtid"] == "slave_pos" and b["using_gtid"] == "auto_position"
    assert b["seconds_behind"] == 3 and b["ssl"] is True and b["ssl_ca"] == "/ca.pem"
    assert normalize_status(None) is None
    assert normalize_status(mariadb_row(Seconds_Behind_Master=None))["seconds_behind"] is None


def test_connecting_io_thread_is_not_running_but_flagged():
    st = normalize_status(mariadb_row(Slave_IO_Running="Connecting"))
    assert not st["io_running"] and st["io_connecting"] and not st["running"]


def test_diff_is_empty_when_settings_match():
    assert diff_source(normalize_status(mariadb_row()), DESIRED, MARIADB_1011) == []
    assert (
        diff_source(
            normalize_status(mysql_row(Source_SSL_Allowed="No", Source_SSL_Verify_Server_Cert="No")), DESIRED, MYSQL_84
        )
        == []
    )


def test_diff_names_what_differs():
    status = normalize_status(mariadb_row(Master_Host="10.0.0.9", Using_Gtid="No", Connect_Retry=60))
    assert diff_source(status, DESIRED, MARIADB_1011) == ["host", "use_gtid", "connect_retry"]


def test_unconfigured_server_gets_change_and_start_and_waits():
    cursor = FakeCursor(None, mariadb_row(Slave_IO_Running="Connecting"), mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: None)
    assert result["changed"]
    assert result["queries"][0].startswith("CHANGE MASTER TO MASTER_HOST = '10.0.0.1'")
    assert "MASTER_PASSWORD = '********'" in result["queries"][0]
    assert "pw" not in " ".join(result["queries"])
    assert result["queries"][-1] == "START REPLICA"
    # The real password travels as a parameter.
    assert cursor.executed[0][1] == ["10.0.0.1", "repl", "pw"]
    assert result["diff"]["before"] == {"configured": False}
    assert result["diff"]["after"]["io_running"] is True


def test_matching_running_replica_is_left_alone():
    cursor = FakeCursor(mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED)
    assert not result["changed"] and result["queries"] == [] and cursor.executed == []


def test_stopped_but_healthy_replica_is_only_started():
    cursor = FakeCursor(mariadb_row(Slave_IO_Running="No", Slave_SQL_Running="No"), mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: None)
    assert result["queries"] == ["START REPLICA"]


def test_changed_source_stops_changes_and_starts():
    cursor = FakeCursor(mariadb_row(Master_Host="10.0.0.9"), mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: None)
    assert [q.split(" ")[0] for q in result["queries"]] == ["STOP", "CHANGE", "START"]


def test_broken_replica_is_reconfigured_so_a_fixed_password_repairs_it():
    broken = mariadb_row(
        Slave_IO_Running="No",
        Last_IO_Errno=1045,
        Last_IO_Error="error connecting to master: Access denied for user 'repl'",
    )
    cursor = FakeCursor(broken, mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: None)
    assert [q.split(" ")[0] for q in result["queries"]] == ["STOP", "CHANGE", "START"]


def test_wait_fails_with_the_replicas_own_error():
    denied = mariadb_row(
        Slave_IO_Running="No",
        Last_IO_Errno=1045,
        Last_IO_Error="error connecting to master 'repl@10.0.0.1:3306' - Access denied",
    )
    cursor = FakeCursor(None, denied)
    with pytest.raises(ReplicationError, match="Access denied"):
        ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: None)


def test_wait_times_out_while_connecting(ticking_clock):
    clock = ticking_clock(10)
    cursor = FakeCursor(None, mariadb_row(Slave_IO_Running="Connecting"))
    with pytest.raises(ReplicationError, match="not running after 30s"):
        ensure_replica(cursor, MARIADB_1011, DESIRED, wait_timeout=30, sleep=lambda s: None, clock=clock)


def test_check_mode_executes_nothing_and_predicts():
    cursor = FakeCursor(None)
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, check_mode=True, initial_gtid_pos="0-1-7")
    assert result["changed"]
    assert result["queries"][0] == "SET GLOBAL gtid_slave_pos = '0-1-7'"
    assert cursor.executed == []
    assert result["diff"]["after"]["source_host"] == "10.0.0.1"


def test_initial_gtid_pos_only_when_unconfigured():
    cursor = FakeCursor(mariadb_row(Master_Host="10.0.0.9"), mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, initial_gtid_pos="0-1-7", sleep=lambda s: None)
    assert not any("gtid_slave_pos" in q for q in result["queries"])


def test_mysql_initial_position_uses_gtid_purged():
    cursor = FakeCursor(None, mysql_row(Source_SSL_Allowed="No"))
    result = ensure_replica(cursor, MYSQL_84, DESIRED, initial_gtid_pos="uuid:1-5", sleep=lambda s: None)
    assert result["queries"][0] == "SET GLOBAL gtid_purged = 'uuid:1-5'"
    assert result["queries"][1].startswith("CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.1'")
    assert result["queries"][2] == "START REPLICA"


def test_stopped_state_stops_running_threads():
    cursor = FakeCursor(mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, state="stopped")
    assert result["queries"] == ["STOP REPLICA"]
    assert (
        ensure_replica(
            FakeCursor(mariadb_row(Slave_IO_Running="No", Slave_SQL_Running="No")),
            MARIADB_1011,
            DESIRED,
            state="stopped",
        )["changed"]
        is False
    )


def test_absent_resets_and_is_idempotent():
    result = ensure_replica(FakeCursor(mariadb_row()), MARIADB_1011, {}, state="absent")
    assert result["queries"] == ["STOP REPLICA", "RESET REPLICA ALL"]
    assert ensure_replica(FakeCursor(None), MARIADB_1011, {}, state="absent")["changed"] is False


def test_access_denied_while_connecting_fails_at_once():
    denied = mariadb_row(
        Slave_IO_Running="Connecting",
        Last_IO_Errno=1045,
        Last_IO_Error="error connecting to master 'repl@10.0.0.1:3306' - Access denied",
    )
    cursor = FakeCursor(None, denied)
    with pytest.raises(ReplicationError, match=r"Last_IO_Error \(1045\).*Access denied"):
        ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: pytest.fail("must not wait"))


def test_transient_connect_error_is_waited_out():
    transient = mariadb_row(Slave_IO_Running="Connecting", Last_IO_Errno=2003, Last_IO_Error="Can't connect")
    cursor = FakeCursor(None, transient, mariadb_row())
    result = ensure_replica(cursor, MARIADB_1011, DESIRED, sleep=lambda s: None)
    assert result["status"]["running"]


def test_only_the_password_is_masked_even_when_another_value_equals_it():
    desired = {**DESIRED, "user": "same", "password": "same"}
    result = ensure_replica(
        FakeCursor(None, mariadb_row(Master_User="same")), MARIADB_1011, desired, sleep=lambda s: None
    )
    assert "MASTER_USER = 'same'" in result["queries"][0]
    assert "MASTER_PASSWORD = '********'" in result["queries"][0]
