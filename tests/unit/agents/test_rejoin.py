import json
import subprocess

import pytest

from webinfra_agents.ha.rejoin import RejoinRefused, Rewind, check_events, plan
from webinfra_agents.kit import db as kit_db

FAILOVER = {"from": "db-01", "to": "db-02", "position": "0-1-103"}


def test_plan_finds_the_tail_after_the_take_over_position():
    assert plan("0-1-105", "0-1-103", "0-2-110", "db-01", FAILOVER) == (0, 1, 104, 105)


@pytest.mark.parametrize(
    ("binlog", "take_over", "leader", "failover", "reason"),
    [
        ("0-1-105", "0-1-103", "0-2-110", {"from": "db-03", "position": "0-1-103"}, "names db-03"),
        ("0-1-105", "0-1-103", "0-2-110", {"from": "db-01"}, "no record"),
        ("0-1-105", "0-1-103", "0-1-102", FAILOVER, "lacks the take-over position"),
        ("0-1-103", "0-1-103", "0-2-110", FAILOVER, "not errant"),
        ("0-1-105,1-1-4", "0-1-103", "0-2-110", FAILOVER, "domain 1 holds transactions"),
        ("0-1-105,1-1-4", "0-1-103,1-1-2", "0-2-110,1-1-2", FAILOVER, "more than one domain"),
        ("x", "0-1-103", "0-2-110", FAILOVER, "cannot be compared"),
    ],
)
def test_plan_refuses_what_it_cannot_undo_safely(binlog, take_over, leader, failover, reason):
    with pytest.raises(RejoinRefused, match=reason):
        plan(
            binlog,
            take_over,
            leader,
            "db-01",
            dict(failover, position=take_over) if "position" in failover else failover,
        )


def event(name, pos, kind, info=""):
    return {"Log_name": name, "Pos": pos, "Event_type": kind, "Info": info}


def transaction(name, pos, number, rows="Write_rows_v1"):
    return [
        event(name, pos, "Gtid", f"BEGIN GTID {number}"),
        event(name, pos + 1, "Annotate_rows", "INSERT INTO t VALUES (1)"),
        event(name, pos + 2, "Table_map", "table_id: 1 (app.t)"),
        event(name, pos + 3, rows, "table_id: 1 flags: STMT_END_F"),
        event(name, pos + 4, "Xid", "COMMIT /* xid=5 */"),
    ]


def binlog(*numbers, first="mysql-bin.000001"):
    events = [event(first, 4, "Format_desc"), event(first, 256, "Gtid_list", "[]")]
    pos = 300
    for number in numbers:
        events += transaction(first, pos, number)
        pos += 100
    return events


def test_check_events_finds_where_the_errant_transactions_start():
    events = binlog("0-1-102", "0-1-103", "0-1-104", "0-1-105")
    assert check_events(events, 0, 1, 104, 105) == ("mysql-bin.000001", 500)


def test_check_events_follows_a_rotation():
    events = binlog("0-1-103", "0-1-104")
    events += [event("mysql-bin.000001", 900, "Rotate", "mysql-bin.000002;pos=4")]
    events += [event("mysql-bin.000002", 4, "Format_desc"), event("mysql-bin.000002", 256, "Gtid_list", "[0-1-104]")]
    events += [event("mysql-bin.000002", 290, "Binlog_checkpoint", "mysql-bin.000002")]
    events += transaction("mysql-bin.000002", 300, "0-1-105")
    assert check_events(events, 0, 1, 104, 105) == ("mysql-bin.000001", 400)


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        (
            binlog("0-1-103", "0-1-104")
            + [
                event("mysql-bin.000001", 900, "Gtid", "GTID 0-1-105"),
                event("mysql-bin.000001", 901, "Query", "ALTER TABLE t ADD c INT"),
            ],
            "no row transaction",
        ),
        (binlog("0-1-103", "0-1-104", "0-7-105"), "another transaction: GTID 0-7-105"),
        (binlog("0-1-103", "0-1-105"), "lacks errant GTIDs \\[104\\]"),
        (binlog("0-1-101", "0-1-102"), "not in the binary log"),
        (binlog("0-1-104") + [event("mysql-bin.000001", 950, "Query", "TRUNCATE t")], "flashback cannot undo"),
        (binlog("0-1-104", "0-1-105")[:-1] + [event("mysql-bin.000001", 950, "Incident", "lost")], "cannot undo"),
    ],
)
def test_check_events_refuses_what_flashback_cannot_undo(events, reason):
    with pytest.raises(RejoinRefused, match=reason):
        check_events(events, 0, 1, 104, 105)


class FakeCursor:
    def __init__(self, server):
        self.server, self.rows = server, []

    def execute(self, sql, args=None):
        self.server.sql.append((sql, args))
        if sql.startswith("SELECT @@GLOBAL.gtid_binlog_pos AS binlog, @@GLOBAL.read_only"):
            self.rows = [{"binlog": self.server.binlog, "ro": 1, "base": "/var/log/mysql/mysql-bin"}]
        elif sql.startswith("SELECT @@GLOBAL.gtid_binlog_pos"):
            self.rows = [{"binlog": self.server.binlog}]
        elif sql == "SHOW BINARY LOGS":
            self.rows = [{"Log_name": "mysql-bin.000001"}]
        elif sql.startswith("SHOW BINLOG EVENTS"):
            self.rows = binlog("0-1-103", "0-1-104", "0-1-105")
        elif sql == "RESET MASTER":
            self.server.binlog = ""

    def fetchone(self):
        return self.rows[0]

    def fetchall(self):
        return self.rows


class FakeServer:
    def __init__(self):
        self.binlog, self.sql = "0-1-105", []
        self.cfg = {"socket": "/run/mysqld/mysqld.sock"}

    def cursor(self):
        return FakeCursor(self)


def test_rewind_saves_undoes_and_resets_to_the_take_over_position(tmp_path):
    server, runs = FakeServer(), []

    def run(argv, **_kw):
        runs.append(argv)
        return subprocess.CompletedProcess(argv, 0, b"-- events\n", b"")

    done = Rewind(server, str(tmp_path), run=run, clock=lambda: 0).rejoin(
        "0-1-103", {"name": "db-02", "gtid": "0-2-110"}, FAILOVER, "db-01"
    )
    assert done["transactions"] == 2 and done["gtids"] == "0-1-104..105"
    assert runs[0][:3] == ["mariadb-binlog", "-vv", "--start-position=400"]
    assert runs[1][:3] == ["mariadb-binlog", "--flashback", "--start-position=400"]
    assert runs[2][0] == "mariadb" and "--init-command=SET SESSION sql_log_bin=0" in runs[2]
    # As the agent's own account (unix_socket maps the system user), on the configured socket.
    assert f"--user={kit_db.os_user()}" in runs[2] and "--socket=/run/mysqld/mysqld.sock" in runs[2]
    audit = tmp_path / "19700101T000000Z-0-1-104"
    assert json.loads((audit / "summary.json").read_text())["take_over"] == "0-1-103"
    assert (audit / "flashback.sql").exists() and (audit / "errant-events.txt").exists()
    assert ("RESET MASTER", None) in server.sql and ("SET GLOBAL gtid_slave_pos = %s", ("0-1-103",)) in server.sql


def test_rewind_stops_before_any_change_when_a_tool_fails(tmp_path):
    server = FakeServer()

    def run(argv, **_kw):
        return subprocess.CompletedProcess(argv, 1, b"", b"mariadb-binlog: bad")

    with pytest.raises(RejoinRefused, match="bad"):
        Rewind(server, str(tmp_path), run=run).rejoin(
            "0-1-103", {"name": "db-02", "gtid": "0-2-110"}, FAILOVER, "db-01"
        )
    assert ("RESET MASTER", None) not in server.sql and server.binlog == "0-1-105"
