"""rebuild.yml: bad requests refused with nothing changed; then a replica that can no longer
catch up (the binary logs it needs purged on the primary: error 1236) is rebuilt - from the
newest backup and the archived binary logs, the primary untouched - and replicates again with
the primary's table checksums. Runs after test_seed.py (file order), which checks the seeding.
Measured figures are printed (the Molecule log).
"""

import threading
import time

from labhosts import groups, host, playbook_digest, run_playbook, sql, wait_for

PRIMARY = groups()["db_primary"][0]
REPLICA = groups()["db_replicas"][0]
# The primary's writable places: a dump or a copy staged there would show.
PRIMARY_DISK = "du -sxb /var /tmp /root | awk '{s+=$1} END {print s}'"


def rebuild(*extra):
    return run_playbook("playbooks/rebuild.yml", *extra)


def slave_status():
    return host(REPLICA).check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")


def io_errno():
    return next((line.split(":", 1)[1].strip() for line in slave_status().splitlines() if "Last_IO_Errno" in line), "")


def kept_copies():
    return host(REPLICA).check_output("ls -d /var/lib/mysql.before-rebuild-* | wc -l").strip()


def test_bad_rebuild_requests_are_refused_and_change_nothing():
    before = kept_copies()
    cases = [
        ((), "host must name the database host to rebuild"),
        (("-e", "host=bk-01"), "host must name the database host to rebuild"),
        (("-e", f"host={PRIMARY}"), f"{PRIMARY} is the writable primary: it is never rebuilt"),
        (("-e", f"host={REPLICA}", "-e", f"rebuild_source={REPLICA}"), "cannot be rebuilt from itself"),
        (("-e", f"host={REPLICA}", "-e", "rebuild_source=nowhere"), "rebuild_source must be"),
    ]
    for args, reason in cases:
        proc = rebuild(*args)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and reason in text and "nothing changed" in text, (args, playbook_digest(proc))
    assert sql(PRIMARY, "SELECT @@GLOBAL.read_only").strip() == "0"
    assert not host(PRIMARY).file("/var/lib/webinfra-rebuild.json").exists
    assert kept_copies() == before and io_errno() == "0"


def test_a_replica_whose_binary_logs_were_purged_is_rebuilt_and_replicates():
    # The replica stops; the primary writes ~60 MB (a table of 60,000 rows of 1 kB) and purges
    # every binary log but the current one: the replica's next position is gone (1236).
    sql(REPLICA, "STOP SLAVE")
    if sql(PRIMARY, "SHOW GLOBAL VARIABLES LIKE 'slave_connections_needed_for_purge'").strip():
        # MariaDB 11.4+ keeps binary logs until a replica is connected.
        sql(PRIMARY, "SET GLOBAL slave_connections_needed_for_purge = 0")
    sql(PRIMARY, "CREATE TABLE webapp.bulk (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB")
    for first in range(1, 60000, 10000):
        rows = f"webapp.seq_{first}_to_{first + 9999}"
        sql(PRIMARY, f"INSERT INTO webapp.bulk SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM {rows}")  # noqa: S608
    sql(PRIMARY, "FLUSH BINARY LOGS")

    def purged():
        sql(PRIMARY, "PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 SECOND")
        return len(sql(PRIMARY, "SHOW BINARY LOGS").splitlines()) == 1

    assert wait_for(purged, timeout=30), sql(PRIMARY, "SHOW BINARY LOGS")
    sql(REPLICA, "START SLAVE")
    assert wait_for(lambda: io_errno() == "1236", timeout=30), slave_status()
    # The bulk table's payload alone (InnoDB's size statistics lag behind fresh writes).
    size = int(sql(PRIMARY, "SELECT SUM(LENGTH(pad)) FROM webapp.bulk"))
    assert size == 60_000_000

    # The primary's disk, sampled every 0.5 s while the rebuild runs.
    baseline = int(host(PRIMARY).check_output(PRIMARY_DISK))
    peak, done = [baseline], threading.Event()

    def sample():
        while not done.is_set():
            peak.append(int(host(PRIMARY).check_output(PRIMARY_DISK)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    try:
        # From the backup explicitly: `auto` would stream from the other, healthy replica.
        proc = rebuild("-e", f"host={REPLICA}", "-e", "rebuild_source=backup")
    finally:
        done.set()
        sampler.join()
    took = time.time() - started
    assert proc.returncode == 0, playbook_digest(proc)
    assert "rebuilt from backup" in proc.stdout, playbook_digest(proc)

    # Replicating again, caught up, the same data as the primary.
    assert wait_for(lambda: io_errno() == "0", timeout=30)
    target = sql(PRIMARY, "SELECT @@GLOBAL.gtid_binlog_pos").strip()
    caught_up = f"SELECT MASTER_GTID_WAIT('{target}', 60)"
    assert sql(REPLICA, caught_up).strip() == "0", slave_status()
    for table in ("webapp.notes", "webapp.bulk"):
        primary_sum = sql(PRIMARY, f"CHECKSUM TABLE {table} EXTENDED").split("\t")[1]
        assert sql(REPLICA, f"CHECKSUM TABLE {table} EXTENDED").split("\t")[1] == primary_sum, table
    growth = max(peak) - baseline
    print(
        f"\nrebuild of {REPLICA} ({size / 1e6:.1f} MB of application data) from the newest backup and the archive:"
        f" {took:.1f} s with the playbook; the primary's disk grew by {growth / 1e6:.2f} MB at most"
    )
    # Nothing the size of the database was staged on the primary (a dump would be ~60 MB).
    assert growth < size / 4, (growth, size)
    # The broken copy is kept beside the new one.
    assert int(kept_copies()) >= 2
    sql(PRIMARY, "INSERT INTO webapp.notes (body, written_by) VALUES ('after the rebuild', 'test')")
    count = sql(PRIMARY, "SELECT COUNT(*) FROM webapp.notes").strip()
    assert wait_for(lambda: sql(REPLICA, "SELECT COUNT(*) FROM webapp.notes").strip() == count, timeout=10)
