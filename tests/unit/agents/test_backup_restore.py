"""Restore and rebuild over the Host seam: the order of what they do to the host, what they
keep, and that every refusal comes before any change. Data directories are temporary paths."""

import contextlib
import io
import os

import pytest

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup import restore as rs

INFO = "binlog_pos = filename 'mysql-bin.000007', position '342', GTID of the last change '0-1-40'\n"


class FakeHost:
    """Records every action in `log`; streams write marker files into their target."""

    def __init__(self, statuses=None, catalog=None, fail_fetch=None, binlog_base=None, ha_active=True):
        self.log = []
        self.statuses = statuses or {}
        self.catalog = catalog
        self.fail_fetch = fail_fetch
        self.binlog_base = binlog_base
        self.ha_active = ha_active

    def run(self, cmd):
        self.log.append(("run", *cmd))
        return ""

    def active(self, unit):
        self.log.append(("active", unit))
        return self.ha_active

    def stop(self, unit):
        self.log.append(("stop", unit))

    def start(self, unit):
        self.log.append(("start", unit))

    def chown(self, path, owner):
        self.log.append(("chown", os.path.basename(path), owner))

    def new_incarnation(self):
        self.log.append(("incarnation",))

    @contextlib.contextmanager
    def unpacker(self, target, compressed):
        self.log.append(("unpack", os.path.basename(target), compressed))
        sink = io.BytesIO()
        yield sink
        # What mbstream would extract: the data and the source's replication files.
        with open(os.path.join(target, "ibdata1"), "wb") as handle:
            handle.write(sink.getvalue())
        with open(os.path.join(target, "master.info"), "w") as handle:
            handle.write("source's\n")

    def binlog_to_sql(self, cmd, out_path):
        self.log.append(("binlog", *[os.path.basename(c) if c.startswith("/") else c for c in cmd]))
        with open(out_path, "w") as handle:
            handle.write("# at 4\n#GTID 0-1-41\nINSERT ...;\n#GTID 0-1-42\n")

    def apply_sql(self, client, path):
        self.log.append(("apply", *client[2:]))

    def execute(self, statements, socket_path=None):
        self.log.extend(("sql", sql, params) for sql, params in statements)
        return []

    def binlog_basename(self, socket_path):
        return self.binlog_base

    def own_status(self):
        return self.statuses["db-02"]

    def get_json(self, address, path, timeout=None):
        self.log.append(("get", address, path))
        if path == "/catalog":
            if self.catalog is None:
                raise OSError("connection refused")
            return self.catalog
        return self.statuses[{"10.0.0.1": "db-01", "10.0.0.3": "db-03"}[address]]

    def fetch(self, repository, path, sink, expected_sha256=None):
        self.log.append(("fetch", path))
        if self.fail_fetch and self.fail_fetch in path:
            raise bk.BackupError(f"{path}: checksum x, the catalog says y")
        sink.write(b"data of " + path.encode())

    def receive_stream(self, address, lsn, sink):
        self.log.append(("stream", address, lsn))
        sink.write(b"stream")
        return {"rc": 0, "info": INFO, "checkpoints": "from_lsn = 0\nto_lsn = 99\n"}


PRIMARY = {"ok": True, "read_only": False, "replicating": False, "lag": None, "gtid": "0-1-40"}
REPLICA = {"ok": True, "read_only": True, "replicating": True, "lag": 0, "gtid": "0-1-40"}
BROKEN = {"ok": False, "error": "down"}

CFG = {
    "name": "db-02",
    "source": {"socket": "/run/mysqld/mysqld.sock"},
    "peers": {
        "sources": [
            {"name": "db-01", "address": "10.0.0.1"},
            {"name": "db-02", "address": "10.0.0.2"},
            {"name": "db-03", "address": "10.0.0.3"},
        ],
        "repositories": [{"name": "backup-01", "address": "10.0.0.9"}],
        "max_lag": 60,
    },
}

CATALOG = {
    "plan": {
        "chain": ["20261201T000000Z", "20261201T010000Z"],
        "sha256": {"20261201T000000Z": "a", "20261201T010000Z": "b"},
        "gtid": "0-1-30",
        "to_time": None,
        "to_gtid": "",
    },
    "backups": [{"id": "20261201T000000Z", "started": 100.0}, {"id": "20261201T010000Z", "started": 200.0}],
    "binlogs": [
        {"server_id": "1", "name": "mysql-bin.000003", "first_event": 150.0, "mtime": 190.0},
        {"server_id": "1", "name": "mysql-bin.000004", "first_event": 195.0, "mtime": 300.0},
    ],
}


@pytest.fixture
def datadir(tmp_path):
    path = tmp_path / "mysql"
    path.mkdir()
    (path / "old-table.ibd").write_text("the old data")
    return str(path)


def kinds(log):
    return [entry[0] for entry in log]


def test_a_rebuild_streams_from_a_healthy_replica_and_keeps_the_old_data(datadir):
    host = FakeHost(statuses={"db-01": PRIMARY, "db-02": BROKEN, "db-03": REPLICA})
    result = rs.rebuild(CFG, datadir=datadir, host=host)

    assert result["kind"] == "stream" and result["source"] == "db-03" and result["primary"] == "db-01"
    assert result["primary_address"] == "10.0.0.1" and result["gtid"] == "0-1-40"
    assert result["ha_agent_stopped"] is True
    # The copy is streamed and prepared first; only then is anything on the host touched: the HA
    # agent stopped, the server stopped, the copy put in place, the server started, replication
    # reset, and the position set to the copy's.
    order = [e for e in host.log if e[0] not in ("get",)]
    assert order == [
        ("unpack", "full", False),
        ("stream", "10.0.0.3", 0),
        (
            "run",
            "mariadb-backup",
            "--prepare",
            "--target-dir=" + os.path.join(os.path.dirname(datadir), "webinfra-rebuild", "full"),
        ),
        ("active", "webinfra-ha-agent"),
        ("stop", "webinfra-ha-agent"),
        ("stop", "mariadb"),
        ("chown", "mysql", "mysql:mysql"),
        ("incarnation",),
        ("start", "mariadb"),
        ("sql", "STOP ALL SLAVES", None),
        ("sql", "RESET SLAVE ALL", None),
        ("sql", "RESET MASTER", None),
        ("sql", "SET GLOBAL gtid_slave_pos = %s", ("0-1-40",)),
    ]
    # Nothing deleted: the old data beside the new; the copy's replication files dropped.
    kept = result["previous_datadir"]
    assert (
        kept.startswith(datadir + ".before-rebuild-")
        and open(os.path.join(kept, "old-table.ibd")).read() == "the old data"
    )
    assert sorted(os.listdir(datadir)) == ["ibdata1"]
    assert not os.path.exists(os.path.join(os.path.dirname(datadir), "webinfra-rebuild"))


def test_a_rebuild_refuses_before_changing_anything(datadir):
    # The writable primary itself, two writable servers, no primary: nothing but questions asked.
    for statuses in (
        {"db-01": REPLICA, "db-02": PRIMARY, "db-03": REPLICA},
        {"db-01": PRIMARY, "db-02": BROKEN, "db-03": dict(PRIMARY)},
        {"db-01": BROKEN, "db-02": BROKEN, "db-03": REPLICA},
    ):
        host = FakeHost(statuses=statuses)
        with pytest.raises(bk.BackupError):
            rs.rebuild(CFG, datadir=datadir, host=host)
        assert set(kinds(host.log)) <= {"get"}
    assert os.listdir(datadir) == ["old-table.ibd"]


def test_a_dry_run_says_what_it_would_do_and_does_nothing(datadir):
    host = FakeHost(statuses={"db-01": PRIMARY, "db-02": REPLICA, "db-03": REPLICA})
    result = rs.rebuild(CFG, source="db-03", dry_run=True, datadir=datadir, host=host)
    assert result["dry_run"] is True and result["source"] == "db-03"
    assert set(kinds(host.log)) <= {"get"} and os.listdir(datadir) == ["old-table.ibd"]


def test_a_rebuild_from_the_newest_backup_replays_the_archive_without_logging_it(datadir):
    lagging = dict(REPLICA, lag=600)
    host = FakeHost(statuses={"db-01": PRIMARY, "db-02": BROKEN, "db-03": lagging}, catalog=CATALOG, ha_active=False)
    result = rs.rebuild(CFG, datadir=datadir, host=host)

    assert result["kind"] == "backup" and result["backup"] == "20261201T010000Z" and result["repository"] == "backup-01"
    assert result["ha_agent_stopped"] is False
    # The chain fetched in order (full, then incremental), prepared in order, then the binary logs
    # written after the newest backup started replayed with sql_log_bin=0 from the backup's
    # position; the position reached is the replica's.
    assert [e[1] for e in host.log if e[0] == "fetch"] == [
        "base/20261201T000000Z/backup.xb.zst",
        "base/20261201T010000Z/backup.xb.zst",
        "binlog/1/mysql-bin.000004",
    ]
    prepares = [e for e in host.log if e[:2] == ("run", "mariadb-backup")]
    assert (
        len(prepares) == 2
        and prepares[1][-1].startswith("--incremental-dir=")
        and prepares[1][-1].endswith("20261201T010000Z")
    )
    assert ("binlog", "mariadb-binlog", "--start-position=0-1-30", "mysql-bin.000004") in host.log
    assert ("apply", "--binary-mode", "--init-command=SET SESSION sql_log_bin=0") in host.log
    assert host.log.index(("sql", "RESET MASTER", None)) < kinds(host.log).index("apply")
    assert host.log[-1] == ("sql", "SET GLOBAL gtid_slave_pos = %s", ("0-1-42",))
    assert result["gtid"] == "0-1-42" and result["binlogs_replayed"] == ["mysql-bin.000004"]


def test_a_damaged_backup_stops_the_rebuild_before_the_server_is_touched(datadir):
    host = FakeHost(
        statuses={"db-01": PRIMARY, "db-02": BROKEN, "db-03": BROKEN}, catalog=CATALOG, fail_fetch="20261201T010000Z"
    )
    with pytest.raises(bk.BackupError, match="checksum"):
        rs.rebuild(CFG, source="backup", datadir=datadir, host=host)
    assert not {"stop", "start", "sql", "chown"} & set(kinds(host.log))
    assert os.listdir(datadir) == ["old-table.ibd"]


def test_a_restore_keeps_binary_logs_outside_the_data_directory_with_the_old_data(tmp_path, datadir):
    logs = tmp_path / "binlogs"
    logs.mkdir()
    for name in ("mysql-bin.000001", "mysql-bin.index", "other.000001"):
        (logs / name).write_text(name)
    host = FakeHost(binlog_base=str(logs / "mysql-bin"))
    plan = dict(CATALOG["plan"], replay=True, binlogs=[CATALOG["binlogs"][1]])
    result = rs.restore({"name": "db-01"}, plan, "10.0.0.9", datadir=datadir, host=host)

    kept = result["previous_datadir"]
    assert sorted(os.listdir(os.path.join(kept, "binlogs"))) == ["mysql-bin.000001", "mysql-bin.index"]
    assert os.listdir(logs) == ["other.000001"]
    # A restore's replay is logged (the restored primary's replicas follow it).
    assert ("apply", "--binary-mode") in host.log
    assert result["gtid_reached"] == "0-1-42" and result["chain"] == plan["chain"]
    assert kinds(host.log).index("start") < kinds(host.log).index("apply")


def archive_plan(*files):
    """A replay plan from the backup at 0-1-40 over archived files (server id, name, mtime)."""
    binlogs = [{"server_id": sid, "name": name, "mtime": mtime, "size": 1} for sid, name, mtime in files]
    return {"gtid": "0-1-40", "to_time": None, "to_gtid": "", "binlogs": binlogs}


def replay_runs(host, plan, tmp_path):
    """(position reached, files replayed, the replaying mariadb-binlog command lines)."""
    reached, replayed = rs.replay(CFG, plan, "backup-01", str(tmp_path), "/run/x.sock", host=host)
    runs = [e[1:] for e in host.log if e[0] == "binlog" and any(str(a).startswith("--start") for a in e)]
    return reached, replayed, runs


class ArchiveTextHost(FakeHost):
    """mariadb-binlog over archived files whose text `text_for(cmd)` gives; a --stop-position
    cuts it after that sequence number, as mariadb-binlog would."""

    def text_for(self, cmd):
        raise NotImplementedError

    def binlog_to_sql(self, cmd, out_path):
        self.log.append(("binlog", *[os.path.basename(c) if c.startswith("/") else c for c in cmd]))
        text = self.text_for(cmd)
        stop = next((c.split("=", 1)[1] for c in cmd if c.startswith("--stop-position=")), None)
        if stop:
            seq = int(stop.rsplit("-", 1)[1])
            text = "".join(
                line + "\n"
                for line in text.splitlines()
                if not line.startswith("GTID") or int(line.split("-")[2].split()[0]) <= seq
            )
        with open(out_path, "w") as handle:
            handle.write(text)


class TwoServersHost(ArchiveTextHost):
    """mariadb-binlog over each server's archived files: db-01's (server 1) and, after the
    failover, db-02's (server 2), as test_backup_archive describes them."""

    TEXT = {
        "1": "Gtid list [0-1-40]\n" + "".join(f"GTID 0-1-{q} trans\n" for q in range(41, 46)),
        "2": "Gtid list [0-1-40]\n"
        + "".join(f"GTID 0-1-{q} trans\n" for q in range(41, 44))
        + "".join(f"GTID 0-2-{q} trans\n" for q in range(44, 47)),
    }

    def text_for(self, cmd):
        return self.TEXT["1" if any("/binlog/1/" in c for c in cmd) else "2"]


def test_a_replay_across_a_failover_stops_the_old_primary_where_the_new_one_took_over(tmp_path):
    plan = archive_plan(("1", "mysql-bin.000004", 100), ("2", "mysql-bin.000009", 200))
    # The two histories read once each, then each segment replayed from the position reached.
    reached, replayed, runs = replay_runs(TwoServersHost(), plan, tmp_path)
    assert len(runs) == 2
    assert ("mariadb-binlog", "--start-position=0-1-40", "--stop-position=0-1-43", "mysql-bin.000004") in runs
    assert ("mariadb-binlog", "--start-position=0-1-43", "mysql-bin.000009") in runs
    assert reached == "0-2-46" and replayed == ["mysql-bin.000004", "mysql-bin.000009"]


class ThreeSegmentsHost(ArchiveTextHost):
    """db-01 (server 1) led and wrote 0-1-41..45, of which db-02 had 41..43; db-02 took over and
    wrote 0-2-44..46; db-01 rejoined (its binary log reset: the archive kept the old file as
    .before-...) and replicated them, then led again after a switchover (0-1-47)."""

    TEXT = {
        "mariadb-bin.000001.before-20261207T100000Z": "Gtid list [0-1-40]\n"
        + "".join(f"GTID 0-1-{q} trans\n" for q in range(41, 46)),
        "mariadb-bin.000009": "Gtid list [0-1-40]\n"
        + "".join(f"GTID 0-1-{q} trans\n" for q in range(41, 44))
        + "".join(f"GTID 0-2-{q} trans\n" for q in range(44, 47)),
        "mariadb-bin.000001": "Gtid list [0-1-43]\n"
        + "".join(f"GTID 0-2-{q} trans\n" for q in range(44, 47))
        + "GTID 0-1-47 trans\n",
    }

    def text_for(self, cmd):
        return "".join(self.TEXT[os.path.basename(c)] for c in cmd if c.startswith("/"))


def test_a_replay_across_a_failover_and_a_rejoin_leaves_the_rolled_back_commits_out(tmp_path):
    plan = archive_plan(
        ("1", "mariadb-bin.000001.before-20261207T100000Z", 100),
        ("2", "mariadb-bin.000009", 200),
        ("1", "mariadb-bin.000001", 300),
    )
    reached, replayed, runs = replay_runs(ThreeSegmentsHost(), plan, tmp_path)
    assert runs == [
        (
            "mariadb-binlog",
            "--start-position=0-1-40",
            "--stop-position=0-1-43",
            "mariadb-bin.000001.before-20261207T100000Z",
        ),
        ("mariadb-binlog", "--start-position=0-1-43", "mariadb-bin.000009"),
        ("mariadb-binlog", "--start-position=0-2-46", "mariadb-bin.000001"),
    ]
    assert reached == "0-1-47" and len(replayed) == 3
