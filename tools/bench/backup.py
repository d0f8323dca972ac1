"""The backup step: a full backup, the archive's lag (RPO), a restore, a rebuild and a drill."""

from __future__ import annotations

import json
import os
import shlex
import threading
import time

from bench.common import CLIENT, ROOT, Hole, Lab, Step, log, percentile
from bench.replication import bench_account

BACKUP_AGENT = "/usr/local/sbin/webinfra-backup"


def archive_lag(lab: Lab, primary: str, backup_host: str, seconds: int) -> list[float]:
    """Every second: the primary's binary-log position, then how long until the archive's copy of
    that file holds it (polled every 50 ms on the backup host)."""
    server_id = lab.sh(primary, "mariadb -N -B -e 'SELECT @@server_id'").stdout.strip()
    lags: list[float] = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = lab.sh(primary, "mariadb -N -B -e 'SHOW MASTER STATUS'").stdout.split()
        seen = time.time()
        path = f"/var/backups/webinfra/binlog/{server_id}/{status[0]}"
        waited = lab.sh(
            backup_host,
            f"python3 -c {shlex.quote(WAIT_SIZE)} {path} {status[1]} 30",
            check=False,
            timeout=60,
        )
        if waited.returncode == 0:
            lags.append(round(time.time() - seen - float(waited.stdout.strip() or 0), 3))
        time.sleep(max(0.0, 1 - (time.time() - seen)))
    return lags


# Prints how long it polled before the file reached the size (the rest of the lag is the exec's).
WAIT_SIZE = """
import os, sys, time
path, size, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
started = time.time()
while time.time() - started < limit:
    if os.path.exists(path) and os.path.getsize(path) >= size:
        break
    time.sleep(0.05)
else:
    sys.exit(1)
print(0)
"""


DISK = "du -sxb /var /tmp /root 2>/dev/null | awk '{s+=$1} END {print s}'"


def bench_rebuild(lab: Lab, primary: str, replica: str) -> dict:
    """rebuild.yml of the replica by a stream from the primary: its time, and how much the
    primary's disk grew at most meanwhile (sampled every second)."""
    log(f"backup: rebuild of {replica} streamed from the primary (rebuild.yml) ...")
    baseline = int(lab.sh(primary, DISK).stdout.strip() or 0)
    peak, done = [baseline], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(int(lab.sh(primary, DISK, check=False).stdout.strip() or 0))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        elapsed, _changed, _text = lab.playbook(
            str(ROOT / "playbooks" / "rebuild.yml"), "-e", json.dumps({"host": replica, "rebuild_source": "primary"})
        )
    finally:
        done.set()
        sampler.join()
    result = json.loads(lab.sh(replica, "cat /var/lib/webinfra-rebuild.json").stdout)
    lab.sh(replica, "rm -rf /var/lib/mysql.before-rebuild-*")
    return {
        "seconds": round(elapsed, 1),
        "agent_seconds": result["duration"],
        "primary_disk_growth_bytes": max(peak) - baseline,
    }


def bench_backup(lab: Lab, gib: float, seconds: int, threads: int) -> dict:  # noqa: PLR0915 - one sequence
    primary = lab.groups["db_primary"][0]
    replica = lab.groups["db_replicas"][0]
    backup_host = (lab.groups.get("backups") or [None])[0]
    if backup_host is None:
        raise SystemExit("bench: the lab inventory has no backups group (make lab deploys one)")
    client_addr = lab.address(CLIENT)
    primary_addr = lab.address(primary)
    password = "bench-" + os.urandom(8).hex()
    sql = "mariadb -N -B -e {}".format
    # sysbench's rows take about 250 bytes with their index: 4 tables of this many rows.
    rows = max(10000, int(gib * 1024**3 / 250 / 4))
    common = (
        f"--db-driver=mysql --mysql-host={primary_addr} --mysql-user=bench --mysql-password={password} "
        f"--mysql-db=sbtest --tables=4 --table-size={rows} --threads={threads}"
    )
    out: dict = {"primary": primary, "replica": replica, "backup_host": backup_host, "rows_per_table": rows}
    bench_account(lab, primary, client_addr, password)
    try:
        with Hole(lab, primary, 3306, client_addr):
            log(f"backup: sysbench prepare (4 tables x {rows} rows, about {gib} GiB) ...")
            started = time.time()
            lab.sh(
                CLIENT,
                f"sysbench oltp_write_only {common} cleanup >/dev/null 2>&1; "
                f"sysbench oltp_write_only {common} prepare >/dev/null",
                timeout=7200,
            )
            out["prepare_seconds"] = round(time.time() - started, 1)
            position = lab.sh(primary, sql("'SELECT @@gtid_binlog_pos'")).stdout.strip()
            lab.sh(replica, sql(shlex.quote(f"SELECT MASTER_GTID_WAIT('{position}', 1800)")), timeout=1900)
            size = lab.sh(
                replica,
                sql(
                    "'SELECT SUM(data_length + index_length) FROM information_schema.tables "
                    'WHERE table_schema = "sbtest"\''
                ),
            ).stdout.strip()
            out["database_bytes"] = int(float(size or 0))
            log("backup: a full backup from the replica to the backup host ...")
            started = time.time()
            meta = json.loads(
                lab.sh(backup_host, f"{BACKUP_AGENT} take /etc/webinfra/backup.json --full", timeout=7200).stdout
            )
            elapsed = time.time() - started
            out["backup"] = {
                "id": meta["id"],
                "source": meta["source"],
                "seconds": round(elapsed, 1),
                "compressed_bytes": meta["size"],
                "mb_per_second": round(out["database_bytes"] / 1e6 / elapsed, 1),
            }
            log(f"backup: sysbench oltp_write_only {seconds} s while the archive's lag is measured every second ...")
            lag_holder: dict = {}
            sampler = threading.Thread(
                target=lambda: lag_holder.update(lags=archive_lag(lab, primary, backup_host, seconds)), daemon=True
            )
            sampler.start()
            lab.sh(CLIENT, f"sysbench oltp_write_only {common} --time={seconds} run >/dev/null", timeout=seconds + 300)
            sampler.join(timeout=seconds + 120)
            lags = lag_holder.get("lags", [])
            out["archive_lag"] = {
                "samples": len(lags),
                "p50_seconds": percentile(lags, 50),
                "p99_seconds": percentile(lags, 99),
                "max_seconds": max(lags) if lags else None,
            }
        log(f"backup: restore of {meta['id']} onto {backup_host} (scratch) ...")
        elapsed, _changed, _text = lab.playbook(
            str(ROOT / "playbooks" / "restore.yml"),
            "-e",
            json.dumps({"restore_target": backup_host, "restore_backup": meta["id"]}),
        )
        out["restore_seconds"] = round(elapsed, 1)
        # oltp_write_only deletes and inserts in pairs: every table keeps its row count.
        counts = " + ".join(f"(SELECT COUNT(*) FROM sbtest.sbtest{i})" for i in range(1, 5))  # noqa: S608 - fixed table names
        restored = lab.sh(backup_host, sql(shlex.quote(f"SELECT {counts}"))).stdout.strip()
        out["restored_rows"] = int(restored or 0)
        out["restored_rows_expected"] = 4 * rows
        lab.sh(backup_host, "systemctl disable --now mariadb >/dev/null 2>&1", check=False)
        out["rebuild"] = bench_rebuild(lab, primary, replica)
        log("backup: a restore drill on the backup host ...")
        started = time.time()
        drill = json.loads(lab.sh(backup_host, f"{BACKUP_AGENT} drill /etc/webinfra/backup.json", timeout=7200).stdout)
        out["drill"] = {
            "seconds": round(time.time() - started, 1),
            "ok": drill["ok"],
            "tables": drill["tables"],
            "compared_with": drill["compared_with"],
        }
    finally:
        lab.sh(CLIENT, f"sysbench oltp_write_only {common} cleanup >/dev/null 2>&1", check=False)
        lab.sh(
            primary,
            sql(shlex.quote(f"DROP USER IF EXISTS 'bench'@'{client_addr}'; DROP DATABASE IF EXISTS sbtest")),
            check=False,
        )
    b, lag = out.get("backup", {}), out.get("archive_lag", {})
    log(
        f"backup: {out.get('database_bytes', 0) / 1e9:.2f} GB backed up in {b.get('seconds')} s "
        f"({b.get('mb_per_second')} MB/s, {b.get('compressed_bytes')} bytes stored); restore "
        f"{out.get('restore_seconds')} s; archive lag p50 {lag.get('p50_seconds')} s, max {lag.get('max_seconds')} s"
    )
    return out


def backup_lines(x: dict) -> list[str]:
    """The backup step's rows of the results table."""
    lines: list[str] = []
    b, lag = x["backup"], x["archive_lag"]
    lines.append(
        f"| full backup of {x['database_bytes'] / 1e9:.2f} GB ({b['source']} to {x['backup_host']}) | "
        f"{b['seconds']} s, {b['mb_per_second']} MB/s, {b['compressed_bytes'] / 1e6:.0f} MB stored |"
    )
    lines.append(
        f"| binary-log archive lag under sysbench writes ({lag['samples']} samples) | "
        f"p50 {lag['p50_seconds']} s, p99 {lag['p99_seconds']} s, max {lag['max_seconds']} s |"
    )
    lines.append(
        f"| restore of that backup onto {x['backup_host']} (restore.yml) | {x['restore_seconds']} s, "
        f"{x['restored_rows']} of {x['restored_rows_expected']} rows |"
    )
    if "rebuild" in x:
        rb, dr = x["rebuild"], x["drill"]
        lines.append(
            f"| rebuild of {x['replica']} streamed from {x['primary']} (rebuild.yml) | {rb['seconds']} s "
            f"({rb['agent_seconds']} s copying and preparing); the primary's disk grew by at most "
            f"{rb['primary_disk_growth_bytes'] / 1e6:.1f} MB |"
        )
        lines.append(
            f"| restore drill on {x['backup_host']} ({dr['tables']} tables, compared with {dr['compared_with']}) | "
            f"{dr['seconds']} s, {'passed' if dr['ok'] else 'FAILED'} |"
        )
    return lines


STEP = Step(
    "backup",
    "a full backup, the archive's lag, a restore, a rebuild and a restore drill",
    run=lambda ctx: bench_backup(ctx.lab, ctx.args.backup_gib, ctx.args.sysbench_seconds, ctx.args.sysbench_threads),
    lines=backup_lines,
    needs_client=True,
)
