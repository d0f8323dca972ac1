"""The backup agent's host roles on their own: the source's state in each server's dialect, the
repository's files (backups, archived binary logs, retention, catalog, metrics), the drill's
record. Streams and mariadb-backup itself run in the Molecule scenarios."""

import json
import os

import pytest

from webinfra_agents.backup import drill, repository, source


class Cursor:
    """Answers the statements of source.read_state from a script: {statement prefix: rows}."""

    def __init__(self, version, answers):
        self.version, self.answers, self.statements, self.rows = version, answers, [], []

    def execute(self, sql, _args=None):
        self.statements.append(sql)
        if sql.startswith("SELECT VERSION()"):
            self.rows = [{"version": self.version, "comment": "mariadb.org" if "MariaDB" in self.version else ""}]
            return
        self.rows = next(rows for prefix, rows in self.answers.items() if sql.startswith(prefix))

    def fetchone(self):
        return self.rows[0] if self.rows else None


class Conn:
    def __init__(self, cursor):
        self.cur, self.closed = cursor, False

    def cursor(self):
        return self.cur

    def close(self):
        self.closed = True


CFG = {"name": "db-02"}


def test_a_mariadb_replica_reports_its_position_threads_and_lag(monkeypatch):
    monkeypatch.setattr(source, "read_incarnation", lambda: "inc-1")
    cur = Cursor(
        "11.8.3-MariaDB-0+deb13u1",
        {
            "SELECT @@GLOBAL.read_only": [{"ro": 1, "gtid": "0-1-42"}],
            "SHOW REPLICA STATUS": [
                {"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": 3}
            ],
        },
    )
    conn = Conn(cur)
    status = source.source_status(CFG, connector=lambda _cfg: conn)
    assert status == {
        "ok": True,
        "name": "db-02",
        "read_only": True,
        "replicating": True,
        "lag": 3,
        "gtid": "0-1-42",
        "incarnation": "inc-1",
    }
    assert "@@GLOBAL.gtid_current_pos" in cur.statements[1] and conn.closed


def test_a_mysql_primary_is_asked_in_its_own_dialect(monkeypatch):
    monkeypatch.setattr(source, "read_incarnation", lambda: "")
    cur = Cursor(
        "8.4.3",
        {
            "SELECT @@GLOBAL.read_only": [{"ro": 0, "gtid": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}],
            "SHOW REPLICA": [],
        },
    )
    status = source.source_status(CFG, connector=lambda _cfg: Conn(cur))
    assert status["read_only"] is False and status["replicating"] is False and status["lag"] is None
    assert status["gtid"].endswith(":1-5")
    assert "@@GLOBAL.gtid_executed" in cur.statements[1] and cur.statements[2] == "SHOW REPLICA STATUS"


def test_a_source_whose_server_does_not_answer_says_so():
    def refused(_cfg):
        raise ConnectionRefusedError("no server")

    assert source.source_status(CFG, connector=refused) == {"ok": False, "error": "no server", "name": "db-02"}


def backup_meta(ident, kind="full", parent=None, started=1000.0, size=10):
    return {
        "id": ident,
        "kind": kind,
        "parent": parent,
        "started": started,
        "finished": started + 5,
        "duration": 5.0,
        "size": size,
        "sha256": "ab" * 32,
        "gtid": f"0-1-{int(started)}",
        "source": "db-02",
    }


@pytest.fixture
def repo(tmp_path):
    textfile = str(tmp_path / "tf" / "webinfra_backup.prom")
    return {"repository": {"dir": str(tmp_path / "repo"), "keep_full": 1, "textfile": textfile}}


def store(cfg, meta, partial=False):
    path = repository.repo_dir(cfg, "base", meta["id"] + (".partial" if partial else ""))
    os.makedirs(path)
    with open(os.path.join(path, "meta.json"), "w") as handle:
        json.dump(meta, handle)
    with open(os.path.join(path, "backup.xb.zst"), "wb") as handle:
        handle.write(b"x" * meta["size"])


def archived(cfg, name, mtime, server="1"):
    path = repository.repo_dir(cfg, "binlog", server, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"binlog")
    os.utime(path, (mtime, mtime))
    return path


def test_the_repository_lists_complete_backups_and_archived_binary_logs(repo):
    store(repo, backup_meta("20261201T000000Z"))
    store(repo, backup_meta("20261202T000000Z", started=2000.0), partial=True)
    archived(repo, "mysql-bin.000001", 900)
    archived(repo, ".mysql-bin.000002.tmp", 950)
    assert [b["id"] for b in repository.load_backups(repo)] == ["20261201T000000Z"]
    assert [(f["server_id"], f["name"], f["size"]) for f in repository.load_binlogs(repo)] == [
        ("1", "mysql-bin.000001", 6)
    ]


def test_retention_keeps_the_newest_chains_and_the_binary_logs_they_need(repo):
    store(repo, backup_meta("20261201T000000Z", started=1000.0))
    store(repo, backup_meta("20261201T060000Z", "incremental", "20261201T000000Z", started=2000.0))
    store(repo, backup_meta("20261202T000000Z", started=5000.0))
    old = archived(repo, "mysql-bin.000001", 1500)
    needed = archived(repo, "mysql-bin.000002", 5500)
    removed = repository.prune(repo)
    assert removed == ["20261201T000000Z", "20261201T060000Z"]
    assert [b["id"] for b in repository.load_backups(repo)] == ["20261202T000000Z"]
    assert not os.path.exists(old) and os.path.exists(needed)


def test_the_catalog_plans_a_restore_with_the_chain_checksums_and_the_logs_to_replay(repo):
    store(repo, backup_meta("20261201T000000Z", started=1000.0))
    store(repo, backup_meta("20261201T060000Z", "incremental", "20261201T000000Z", started=2000.0))
    archived(repo, "mysql-bin.000003", 2500)
    out = repository.catalog(repo)
    assert out["plan"]["chain"] == ["20261201T000000Z", "20261201T060000Z"]
    assert set(out["plan"]["sha256"]) == {"20261201T000000Z", "20261201T060000Z"}
    assert "error" not in out and len(out["binlogs"]) == 1
    assert "no backup" in repository.catalog(repo, backup="20250101T000000Z")["error"]


def test_the_backup_metrics_and_the_last_run_are_written_for_node_exporter(repo):
    store(repo, backup_meta("20261201T000000Z", started=1000.0, size=10))
    store(repo, backup_meta("20261201T060000Z", "incremental", "20261201T000000Z", started=2000.0, size=4))
    repository.write_metrics(repo, run_ok=True)
    text = open(repo["repository"]["textfile"]).read()
    assert "webinfra_backup_last_run_success 1" in text and "webinfra_backup_bytes_total 14" in text
    assert 'webinfra_backup_count{kind="incremental"} 1' in text and "webinfra_backup_last_size_bytes 4" in text
    state = json.load(open(repository.repo_dir(repo, "state.json")))
    assert state["last_run_success"] is True
    repository.write_metrics(repo)  # a metrics-only run keeps the last run's verdict
    assert "webinfra_backup_last_run_success 1" in open(repo["repository"]["textfile"]).read()


def test_the_archive_metrics_have_their_own_file(repo):
    archived(repo, "mysql-bin.000001", 1234)
    repository.write_archive_metrics(repo, connected=False)
    path = os.path.join(os.path.dirname(repo["repository"]["textfile"]), "webinfra_binlog_archive.prom")
    text = open(path).read()
    assert "webinfra_binlog_archive_connected 0" in text and "webinfra_binlog_archive_bytes_total 6" in text
    assert "webinfra_binlog_archive_last_write_timestamp_seconds 1234" in text


def test_a_failed_drill_is_recorded_and_keeps_the_last_success(repo):
    os.makedirs(repo["repository"]["dir"])
    drill.write_drill_metrics(repo, {"ok": True, "duration": 12.5, "tables": 3, "compared_with": "x"})
    drill.write_drill_metrics(repo, {"ok": False, "error": "tables differ"})
    state = json.load(open(repository.repo_dir(repo, "drill.json")))
    assert state["last"] == {"ok": False, "error": "tables differ"} and state["last_success"] < state["last_run"] + 1
    text = open(os.path.join(os.path.dirname(repo["repository"]["textfile"]), "webinfra_restore_drill.prom")).read()
    assert "webinfra_restore_drill_last_run_success 0" in text
    assert "webinfra_restore_drill_last_success_timestamp_seconds" in text
    assert oct(os.stat(repository.repo_dir(repo, "drill.json")).st_mode & 0o777) == "0o600"
