import io
import json

import pytest

from webinfra_agents.backup import archive as bk

INFO = """uuid = 072b0483-ecd4-11f1-a428-da811a0987d4
tool_version = 11.8.9-MariaDB
server_version = 11.8.9-MariaDB-0+deb13u1 from Debian-log
binlog_pos = filename 'mariadb-bin.000001', position '869', GTID of the last change '0-11-3'
innodb_to_lsn = 45434
"""
CHECKPOINTS = "backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 45434\nlast_lsn = 48793\n"


def meta(ident, kind="full", parent=None, source="db-02", finished=None, gtid="0-1-10", to_lsn=100):
    started = bk.id_time(ident)
    return {
        "id": ident,
        "kind": kind,
        "parent": parent,
        "source": source,
        "started": started,
        "finished": finished if finished is not None else started + 5,
        "gtid": gtid,
        "to_lsn": to_lsn,
    }


def test_backup_record_reads_the_position_and_the_lsn():
    record = bk.backup_record(INFO, CHECKPOINTS)
    assert record["binlog_file"] == "mariadb-bin.000001" and record["binlog_pos"] == 869
    assert record["gtid"] == "0-11-3" and record["to_lsn"] == 45434 and record["from_lsn"] == 0
    assert bk.parse_binlog_pos("") == (None, None, "")
    assert bk.parse_binlog_pos("filename 'b.000002', position '4'") == ("b.000002", 4, "")


def test_ids_and_times_round_trip():
    ident = bk.backup_id(1796053081)
    assert ident == "20261130T153801Z" and bk.id_time(ident) == 1796053081
    assert bk.parse_time("2026-11-30 15:38:01") == 1796053081
    assert bk.format_time(1796053081) == "2026-11-30 15:38:01"
    with pytest.raises(bk.BackupError, match="restore_to_time must be a UTC time"):
        bk.parse_time("yesterday")


def test_choose_source_prefers_the_first_healthy_replica():
    statuses = {
        "db-01": {"ok": True, "read_only": False},
        "db-02": {"ok": True, "read_only": True, "replicating": True, "lag": 0},
        "db-03": {"ok": True, "read_only": True, "replicating": True, "lag": 0},
    }
    assert bk.choose_source(statuses, 60) == ("db-02", "a healthy replica")


def test_choose_source_skips_lagging_and_stopped_replicas_and_falls_back_to_the_primary():
    statuses = {
        "db-01": {"ok": True, "read_only": False},
        "db-02": {"ok": True, "read_only": True, "replicating": True, "lag": 600},
        "db-03": {"ok": True, "read_only": True, "replicating": False, "lag": None},
        "db-04": {"ok": False, "error": "timed out"},
    }
    name, reason = bk.choose_source(statuses, 60)
    assert name == "db-01" and "600 s behind" in reason and "not replicating" in reason and "timed out" in reason
    with pytest.raises(bk.BackupError, match="no server to back up"):
        bk.choose_source(statuses, 60, allow_primary=False)


def test_next_backup_continues_the_chain_of_the_same_server_only():
    assert bk.next_backup([], "db-02", 6) == ("full", None, 0)
    full = meta("20261130T010000Z", to_lsn=100)
    inc = meta("20261130T020000Z", "incremental", full["id"], to_lsn=200)
    assert bk.next_backup([full, inc], "db-02", 6) == ("incremental", inc["id"], 200)
    assert bk.next_backup([full, inc], "db-03", 6) == ("full", None, 0)  # LSNs belong to one server
    assert bk.next_backup([full, inc], "db-02", 1) == ("full", None, 0)  # the chain is long enough
    assert bk.next_backup([full, inc], "db-02", 6, force_full=True) == ("full", None, 0)
    assert bk.next_backup([full], "db-02", 0) == ("full", None, 0)


def test_next_backup_starts_a_new_chain_after_the_data_was_replaced():
    full = dict(meta("20261130T010000Z", to_lsn=100), incarnation="a")
    assert bk.next_backup([full], "db-02", 6, incarnation="a") == ("incremental", full["id"], 100)
    # A rebuild or a restore of db-02 since: its pages are another copy's.
    assert bk.next_backup([full], "db-02", 6, incarnation="b") == ("full", None, 0)
    # Backups from before incarnations were recorded continue while the server has none either.
    assert bk.next_backup([meta("20261130T010000Z")], "db-02", 6)[0] == "incremental"


PRIMARY = {"ok": True, "read_only": False}
HEALTHY = {"ok": True, "read_only": True, "replicating": True, "lag": 0}
BROKEN = {"ok": True, "read_only": True, "replicating": False, "lag": None}


def test_rebuild_prefers_a_healthy_replica_then_the_newest_backup_then_the_primary():
    statuses = {"db-01": PRIMARY, "db-02": BROKEN, "db-03": dict(HEALTHY, lag=3), "db-04": HEALTHY}
    plan = bk.rebuild_plan("db-02", statuses, 60, have_backup=True)
    assert plan == {"kind": "stream", "source": "db-04", "primary": "db-01", "reason": "a healthy replica"}
    statuses = {"db-01": PRIMARY, "db-02": BROKEN, "db-03": dict(HEALTHY, lag=900)}
    plan = bk.rebuild_plan("db-02", statuses, 60, have_backup=True)
    assert plan["kind"] == "backup" and plan["source"] is None and plan["primary"] == "db-01"
    plan = bk.rebuild_plan("db-02", statuses, 60, have_backup=False)
    assert plan["kind"] == "stream" and plan["source"] == "db-01"
    # A target whose server does not even start is rebuilt too.
    plan = bk.rebuild_plan("db-02", {"db-01": PRIMARY, "db-02": {"ok": False, "error": "down"}}, 60)
    assert plan["source"] == "db-01"


def test_rebuild_follows_the_source_asked_for():
    statuses = {"db-01": PRIMARY, "db-02": BROKEN, "db-03": HEALTHY}
    assert bk.rebuild_plan("db-02", statuses, 60, source="primary")["source"] == "db-01"
    assert bk.rebuild_plan("db-02", statuses, 60, source="db-01")["source"] == "db-01"
    assert bk.rebuild_plan("db-02", statuses, 60, source="db-03")["source"] == "db-03"
    assert bk.rebuild_plan("db-02", statuses, 60, source="backup", have_backup=True)["kind"] == "backup"


@pytest.mark.parametrize(
    ("target", "statuses", "kwargs", "reason"),
    [
        ("db-01", {"db-01": PRIMARY, "db-02": HEALTHY}, {}, "db-01 is the writable primary: it is never rebuilt"),
        ("db-09", {"db-01": PRIMARY}, {}, "db-09 is not a database host"),
        ("db-02", {"db-01": dict(PRIMARY, read_only=True), "db-02": BROKEN}, {}, "no writable primary"),
        ("db-02", {"db-01": {"ok": False}, "db-02": BROKEN}, {}, "no writable primary"),
        ("db-03", {"db-01": PRIMARY, "db-02": PRIMARY, "db-03": BROKEN}, {}, "more than one server is writable"),
        ("db-02", {"db-01": PRIMARY, "db-02": BROKEN}, {"source": "backup"}, "no backup repository holds a backup"),
        ("db-02", {"db-01": PRIMARY, "db-02": BROKEN}, {"source": "db-02"}, "cannot be rebuilt from itself"),
        ("db-02", {"db-01": PRIMARY, "db-02": BROKEN}, {"source": "db-07"}, "db-07 is not a database host"),
        (
            "db-02",
            {"db-01": PRIMARY, "db-02": BROKEN, "db-03": dict(HEALTHY, lag=900)},
            {"source": "db-03"},
            "db-03 is no healthy replica",
        ),
    ],
)
def test_rebuild_refusals(target, statuses, kwargs, reason):
    with pytest.raises(bk.BackupError, match=reason):
        bk.rebuild_plan(target, statuses, 60, **kwargs)


def test_retention_keeps_the_newest_chains_and_the_binlogs_they_need():
    a = meta("20261128T010000Z")
    a1 = meta("20261128T020000Z", "incremental", a["id"])
    b = meta("20261129T010000Z")
    c = meta("20261130T010000Z")
    c1 = meta("20261130T020000Z", "incremental", c["id"])
    assert bk.to_prune([a, a1, b, c, c1], 2) == [a["id"], a1["id"]]
    assert bk.to_prune([a, a1, b, c, c1], 0) == [a["id"], a1["id"], b["id"]]  # at least one kept
    binlogs = [
        {"path": "/r/binlog/1/old", "mtime": b["started"] - 3600},
        {"path": "/r/binlog/1/during", "mtime": b["started"] + 10},
    ]
    assert bk.binlogs_to_prune(binlogs, [b, c, c1]) == ["/r/binlog/1/old"]
    assert bk.binlogs_to_prune(binlogs, []) == []


def test_an_incremental_whose_parent_is_gone_is_no_chain():
    orphan = meta("20261130T020000Z", "incremental", "20261129T010000Z")
    assert bk.chains([orphan]) == []


def test_restore_plan_picks_the_newest_backup_before_the_time():
    full = meta("20261130T010000Z", gtid="0-1-10")
    inc = meta("20261130T020000Z", "incremental", full["id"], gtid="0-1-20")
    nxt = meta("20261130T030000Z", gtid="0-1-30")
    plan = bk.restore_plan([full, inc, nxt], to_time=inc["finished"] + 60)
    assert plan["chain"] == [full["id"], inc["id"]] and plan["gtid"] == "0-1-20" and plan["replay"]
    assert bk.restore_plan([full, inc, nxt])["chain"] == [nxt["id"]]
    assert not bk.restore_plan([full, inc, nxt])["replay"]
    assert bk.restore_plan([full, inc, nxt], backup=inc["id"])["chain"] == [full["id"], inc["id"]]
    assert bk.restore_plan([full, inc, nxt], to_gtid="0-1-25")["chain"] == [full["id"], inc["id"]]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"to_time": 0}, "before the oldest backup"),
        ({"backup": "20201010T000000Z"}, "no backup 20201010T000000Z"),
        ({"to_gtid": "0-1-5"}, "every backup is past"),
        ({"to_gtid": "nonsense"}, "not a MariaDB GTID"),
        ({"to_time": 1, "to_gtid": "0-1-5"}, "not both"),
    ],
)
def test_restore_plan_refusals(kwargs, reason):
    full = meta("20261130T010000Z", gtid="0-1-10")
    with pytest.raises(ValueError, match=reason):
        bk.restore_plan([full], **kwargs)


def test_restore_plan_refuses_an_empty_repository_and_a_backup_after_the_time():
    with pytest.raises(bk.BackupError, match="no backup"):
        bk.restore_plan([])
    full = meta("20261130T010000Z")
    with pytest.raises(bk.BackupError, match="after restore_to_time"):
        bk.restore_plan([full], backup=full["id"], to_time=full["finished"] - 100)


def test_binlog_replay_files_follow_the_order_they_were_written_across_a_failover():
    archive = [
        {"server_id": "2", "name": "mariadb-bin.000004", "mtime": 5000},
        {"server_id": "1", "name": "mariadb-bin.000002", "mtime": 3000},
        {"server_id": "1", "name": "mariadb-bin.000001", "mtime": 900},
        {"server_id": "1", "name": "mariadb-bin.000003", "mtime": 4000},
    ]
    files = bk.binlog_replay_files(archive, started=2000)
    assert [f["name"] for f in files] == ["mariadb-bin.000002", "mariadb-bin.000003", "mariadb-bin.000004"]
    assert [(sid, [f["name"] for f in fs]) for sid, fs in bk.segments(files)] == [
        ("1", ["mariadb-bin.000002", "mariadb-bin.000003"]),
        ("2", ["mariadb-bin.000004"]),
    ]


def test_last_gtid_after_a_replay():
    text = "#261130 15:38:05 server id 11 GTID 0-11-4 trans\n#261130 GTID 0-11-6 trans\nGTID 1-3-2 ddl\n"
    assert bk.last_gtid(text, "0-11-3") == "0-11-6,1-3-2"
    assert bk.last_gtid("", "0-11-3") == "0-11-3"


def test_frames_round_trip_and_a_cut_stream_is_an_error():
    data = bk.frame(b"D", b"abc") + bk.frame(b"D", b"") + bk.frame(b"M", json.dumps({"rc": 0}).encode())
    assert list(bk.read_frames(io.BytesIO(data).read)) == [(b"D", b"abc"), (b"D", b""), (b"M", b'{"rc": 0}')]
    with pytest.raises(bk.BackupError, match="ended early"):
        list(bk.read_frames(io.BytesIO(data[:-3]).read))


# mariadb-binlog's text of two servers' archived files around a failover: db-01 (server 1) led
# and wrote 0-1-41..0-1-45, of which db-02 (server 2) received 41..43; db-02 took over at 0-1-43
# and wrote 0-2-44, 0-2-45, 0-2-46. db-01's 0-1-44 and 0-1-45 were never acknowledged.
OLD_PRIMARY = "# at 4\n#261207  0:00:00 server id 1  end_log_pos 256 CRC32 0x1 \tGtid list [0-1-40]\n" + "".join(
    f"#261207 server id 1 end_log_pos 9 \tGTID 0-1-{seq} trans\nINSERT ...;\n" for seq in range(41, 46)
)
NEW_PRIMARY = (
    "#261207 server id 2 end_log_pos 256 \tGtid list [0-1-40]\n"
    + "".join(f"#261207 server id 1 end_log_pos 9 \tGTID 0-1-{seq} trans\n" for seq in range(41, 44))
    + "".join(f"#261207 server id 2 end_log_pos 9 \tGTID 0-2-{seq} trans\n" for seq in range(44, 47))
)


def test_a_servers_history_from_its_binary_log_text():
    assert bk.history(OLD_PRIMARY) == {0: {40: 1, 41: 1, 42: 1, 43: 1, 44: 1, 45: 1}}
    assert bk.history(NEW_PRIMARY)[0][44] == 2 and bk.history("") == {}
    # A file's starting state names the last GTID of each server in a domain (after a failover).
    assert bk.history("\tGtid list [0-1-43,0-2-46,1-3-7]\n") == {0: {43: 1, 46: 2}, 1: {7: 3}}


def test_the_old_primarys_segment_ends_where_its_successor_took_over():
    """Replayed up to 0-1-43 (what db-02 had when it took over), not the never-acknowledged
    0-1-44 and 0-1-45 - whose sequence numbers db-02's own 0-2-44 and 0-2-45 then reuse."""
    old, new = bk.history(OLD_PRIMARY), bk.history(NEW_PRIMARY)
    assert bk.diverged_at(old, new) == "0-1-43"
    # The successor's history agrees with itself and extends a history it fully holds.
    assert bk.diverged_at(new, new) == "" and bk.diverged_at({0: {41: 1, 42: 1}}, new) == ""
    # A segment whose every transaction conflicts: none of it is history.
    assert bk.diverged_at({0: {44: 1, 45: 1}}, new) is None


def test_the_earlier_of_two_positions():
    assert bk.earlier("", "0-1-43") == "0-1-43" and bk.earlier("0-1-50", None) == "0-1-50"
    assert bk.earlier("0-1-50", "0-1-43") == "0-1-43" and bk.earlier("0-1-40", "0-1-43") == "0-1-40"


def test_the_archive_follows_on_from_its_last_file_and_keeps_a_reset_servers_history():
    logs = ["mariadb-bin.000006", "mariadb-bin.000007"]
    have = ["mariadb-bin.000005", "mariadb-bin.000006"]
    assert bk.archive_start(have, logs, "20261207T150000Z") == ("mariadb-bin.000006", [])
    # Purged before the archive read it: a gap, nothing renamed.
    assert bk.archive_start(["mariadb-bin.000003"], logs, "x") == ("mariadb-bin.000006", [])
    # Reset (a former primary rejoined: RESET MASTER): its earlier files of the same names kept aside.
    start, aside = bk.archive_start(
        ["mariadb-bin.000001", "mariadb-bin.000002"], ["mariadb-bin.000001"], "20261207T150000Z"
    )
    assert start == "mariadb-bin.000001"
    assert aside == [
        ("mariadb-bin.000001", "mariadb-bin.000001.before-20261207T150000Z"),
        ("mariadb-bin.000002", "mariadb-bin.000002.before-20261207T150000Z"),
    ]
    assert bk.safe_name("binary log name", aside[0][1]) and bk.archive_start([], [], "x") == (None, [])
