"""Backups on bk-01: taken from the replica, the primary's binary log archived, and a
point-in-time restore under write load that brings back a table dropped by mistake.

Order matters (pytest runs the file top to bottom): the first backup (started by site.yml),
bad restore requests (refused, nothing changed), then writes, an incremental backup under
load, a recorded point in time, the mistake, and the restore onto bk-01 (a scratch restore).
Measured figures are printed (the Molecule log).
"""

import contextlib
import json
import threading
import time

import repository
from labhosts import groups, host, run_playbook, sql, wait_for

PRIMARY = groups()["db_primary"][0]
REPLICA = groups()["db_replicas"][0]
BACKUP = groups()["backups"][0]
REPO = repository.REPO


def backups():
    return repository.backups(BACKUP)


def take_backup():
    return repository.take_backup(BACKUP)


def checksum(name, table):
    return sql(name, f"CHECKSUM TABLE {table} EXTENDED").split("\t")[1]


@contextlib.contextmanager
def writes(prefix):
    """Inserts on the primary, one every ~50 ms, while the block runs."""
    done = threading.Event()

    def insert():
        count = 0
        while not done.is_set():
            sql(PRIMARY, f"INSERT INTO webapp.notes (body, written_by) VALUES ('{prefix}-{count}', 'load')")  # noqa: S608
            count += 1
            time.sleep(0.05)

    thread = threading.Thread(target=insert, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_the_first_backup_comes_from_the_replica_with_its_position_and_checksum():
    assert wait_for(backups, timeout=120), host(BACKUP).run("journalctl -u webinfra-backup --no-pager").stdout
    first = backups()[0]
    assert first["kind"] == "full" and first["source"] == REPLICA, first
    assert first["gtid"] and first["to_lsn"] > 0
    stored = host(BACKUP).check_output(f"sha256sum {REPO}/base/{first['id']}/backup.xb.zst").split()[0]
    assert stored == first["sha256"]
    assert host(BACKUP).file(f"{REPO}/base/{first['id']}/meta.json").mode == 0o600


def test_the_archive_follows_the_primary():
    server_id = sql(PRIMARY, "SELECT @@server_id").strip()
    assert wait_for(lambda: host(BACKUP).run(f"ls {REPO}/binlog/{server_id}/").stdout.strip() != "", timeout=60)
    metrics = host(BACKUP).file("/var/lib/prometheus/node-exporter/webinfra_binlog_archive.prom")
    assert wait_for(lambda: "webinfra_binlog_archive_connected 1" in metrics.content_string, timeout=30)
    # The archive account reads the binary log only, over TLS, from the backup host's address.
    grants = sql(
        PRIMARY, "SELECT CONCAT(user, '@', host, ' ', ssl_type) FROM mysql.user WHERE user = 'webinfra_binlog'"
    )
    assert grants.strip().endswith("ANY") and "%" not in grants


def restore(*extra):
    return run_playbook("playbooks/restore.yml", *extra)


def test_bad_restore_requests_are_refused_and_change_nothing():
    cases = [
        ((), "restore_target is required"),
        (("-e", f"restore_target={PRIMARY}"), "is a database host of the stack"),
        (("-e", f"restore_target={PRIMARY}", "-e", "restore_force=false"), "restore_force=true"),
        (("-e", f"restore_target={BACKUP}", "-e", '{"restore_to_time": "2001-01-01 00:00:00"}'), "before the oldest"),
        (("-e", f"restore_target={BACKUP}", "-e", "restore_to_time=yesterday"), "restore_to_time must be"),
    ]
    for args, reason in cases:
        proc = restore(*args)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and reason in text and "nothing changed" in text, (args, text[-2500:])
    assert not host(BACKUP).file("/var/lib/webinfra-restore.json").exists
    assert not host(BACKUP).package("mariadb-server").is_installed


def test_point_in_time_restore_brings_back_a_dropped_table():
    sql(PRIMARY, "CREATE TABLE IF NOT EXISTS webapp.precious (id INT PRIMARY KEY, v VARCHAR(40))")
    sql(PRIMARY, "INSERT IGNORE INTO webapp.precious SELECT seq, CONCAT('value ', seq) FROM webapp.seq_1_to_500")
    with writes("before-backup"):
        time.sleep(2)
        meta = take_backup()  # under write load
        time.sleep(2)
    assert meta["kind"] == "incremental" and meta["source"] == REPLICA, meta
    # The point in time: no write in flight; every write before it has an earlier timestamp.
    point = int(time.time()) + 1
    time.sleep(max(0, point - time.time()) + 0.2)
    record = {t: checksum(PRIMARY, t) for t in ("webapp.notes", "webapp.precious")}
    rows = sql(PRIMARY, "SELECT COUNT(*) FROM webapp.notes").strip()
    after = f"after-point-{point}"
    with writes(after):
        time.sleep(2)
        sql(PRIMARY, "DROP TABLE webapp.precious")  # the mistake
        time.sleep(2)
    # The archive's lag behind the primary's binary log (RPO).
    master = sql(PRIMARY, "SHOW MASTER STATUS").split("\t")
    server_id = sql(PRIMARY, "SELECT @@server_id").strip()
    caught_up = time.time()
    archived = f"{REPO}/binlog/{server_id}/{master[0]}"
    assert wait_for(
        lambda: host(BACKUP).file(archived).exists and host(BACKUP).file(archived).size >= int(master[1]), 30
    )
    print(f"\nbinary-log archive caught up {time.time() - caught_up:.2f} s after the last write was checked")

    moment = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(point))
    started = time.time()
    proc = restore("-e", f"restore_target={BACKUP}", "-e", json.dumps({"restore_to_time": moment}))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    print(f"point-in-time restore to {moment} took {time.time() - started:.1f} s (playbook)")
    result = json.loads(host(BACKUP).file("/var/lib/webinfra-restore.json").content_string)
    assert result["backup"] == meta["id"] and result["binlogs_replayed"], result
    assert sql(BACKUP, "SELECT COUNT(*) FROM webapp.notes").strip() == rows
    assert {t: checksum(BACKUP, t) for t in record} == record
    # Nothing written after the point, and the primary still lacks the table it lost.
    assert sql(BACKUP, f"SELECT COUNT(*) FROM webapp.notes WHERE body LIKE '{after}-%'").strip() == "0"  # noqa: S608
    assert "precious" not in sql(PRIMARY, "SHOW TABLES FROM webapp")


def drill():
    return repository.drill(BACKUP)


def test_the_restore_drill_compares_two_independent_restores():
    take_backup()  # the newest backup, after the writes and the mistake above
    rc, result, metrics = drill()
    assert rc == 0 and result["ok"], (result, host(BACKUP).run("journalctl -u webinfra-restore-drill -n 30").stdout)
    # The newest backup restored, and the one before it with the archive replayed to the same position.
    assert result["compared_with"] and result["compared_with"] < result["backup"], result
    assert result["binlogs_replayed"] >= 1 and result["tables"] >= 1 and not result["mismatches"], result
    assert "webinfra_restore_drill_last_run_success 1" in metrics
    assert "webinfra_restore_drill_compared 1" in metrics
    print(f"\nrestore drill of {result['backup']} against {result['compared_with']}: {result['duration']} s")


def test_a_damaged_backup_fails_the_drill():
    newest = backups()[-1]["id"]
    stored = f"{REPO}/base/{newest}/backup.xb.zst"
    damage = f"printf damage | dd of={stored} bs=1 seek=4096 conv=notrunc"
    host(BACKUP).check_output(f"cp -p {stored} {stored}.good && {damage}")
    try:
        rc, result, metrics = drill()
    finally:
        host(BACKUP).check_output(f"mv {stored}.good {stored}")
    assert rc != 0 and not result["ok"] and "checksum" in result["error"], result
    assert "webinfra_restore_drill_last_run_success 0" in metrics
