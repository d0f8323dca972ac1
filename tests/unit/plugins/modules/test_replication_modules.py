import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils import mysql_connection
from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_connection import ConnectionFailure
from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_flavor import MARIADB, Flavor
from ansible_collections.webinfra.distributed.plugins.module_utils.replication import ReplicationError
from ansible_collections.webinfra.distributed.plugins.modules import replication, replication_info

FLAVOR = Flavor(MARIADB, (10, 11, 6))


class Conn:
    def cursor(self):
        return object()


@pytest.fixture
def boundary(monkeypatch):
    calls = {}

    def fake_ensure(cursor, flavor, desired, **kwargs):
        calls["desired"] = desired
        calls["kwargs"] = kwargs
        return {"changed": True, "queries": ["START REPLICA"], "diff": {}, "status": None}

    monkeypatch.setattr(mysql_connection, "connect", lambda params: Conn())
    monkeypatch.setattr(mysql_connection, "server_flavor", lambda cursor: FLAVOR)
    monkeypatch.setattr(replication, "ensure_replica", fake_ensure)
    return calls


def test_replication_passes_settings_and_check_mode(run_module, boundary):
    kind, result = run_module(
        replication,
        {
            "primary_host": "10.0.0.1",
            "primary_user": "repl",
            "primary_password": "pw",
            "_ansible_check_mode": True,
            "initial_gtid_pos": "0-1-5",
            "channel": "east",
        },
    )
    assert kind == "exit" and result["changed"] and result["flavor"] == "mariadb" and result["version"] == "10.11.6"
    assert boundary["desired"]["host"] == "10.0.0.1" and boundary["desired"]["use_gtid"] is True
    assert boundary["kwargs"]["check_mode"] is True
    assert boundary["kwargs"]["initial_gtid_pos"] == "0-1-5" and boundary["kwargs"]["channel"] == "east"


def test_replication_requires_a_primary_unless_absent(run_module, boundary):
    kind, result = run_module(replication, {"state": "running"})
    assert kind == "fail" and "primary_host" in result["msg"]
    kind, _result = run_module(replication, {"state": "absent"})
    assert kind == "exit"


def test_file_position_mode_requires_coordinates(run_module, boundary):
    kind, result = run_module(replication, {"primary_host": "h", "primary_user": "u", "use_gtid": "no"})
    assert kind == "fail" and "primary_log_file" in result["msg"]


def test_unknown_state_lists_choices(run_module, boundary):
    kind, result = run_module(replication, {"state": "paused"})
    assert kind == "fail" and "running, stopped, absent" in result["msg"]


def test_replica_error_text_is_the_failure_message(run_module, monkeypatch, boundary):
    def broken(*args, **kwargs):
        raise ReplicationError("Last_IO_Error (1045): Access denied for user 'repl'")

    monkeypatch.setattr(replication, "ensure_replica", broken)
    kind, result = run_module(replication, {"primary_host": "h", "primary_user": "repl", "primary_password": "x"})
    assert kind == "fail" and "Access denied" in result["msg"]


def test_unreachable_server_is_named(run_module, monkeypatch):
    def refuse(params):
        raise ConnectionFailure("cannot connect to socket /run/mysqld/mysqld.sock: [Errno 2] No such file")

    monkeypatch.setattr(mysql_connection, "connect", refuse)
    kind, result = run_module(replication_info, {})
    assert kind == "fail" and "/run/mysqld/mysqld.sock" in result["msg"]


def test_missing_pymysql_gives_the_standard_message(run_module, monkeypatch):
    monkeypatch.setattr(mysql_connection, "HAS_PYMYSQL", False)
    kind, result = run_module(replication_info, {})
    assert kind == "fail" and "PyMySQL" in result["msg"] and "required" in result["msg"].lower()


def test_info_is_never_changed(run_module, monkeypatch):
    monkeypatch.setattr(mysql_connection, "connect", lambda params: Conn())
    monkeypatch.setattr(mysql_connection, "server_flavor", lambda cursor: FLAVOR)
    monkeypatch.setattr(replication_info, "gather", lambda cursor, flavor, channel: {"flavor": "mariadb"})
    kind, result = run_module(replication_info, {})
    assert kind == "exit" and result["changed"] is False and result["flavor"] == "mariadb"
