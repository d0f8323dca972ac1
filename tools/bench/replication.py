"""The replication step: sysbench on the primary while the replica's lag is sampled every second."""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
import time

from bench.common import CLIENT, Hole, Lab, Step, log, percentile, run

SAMPLER = """
import json, subprocess, sys, time
payload, count = sys.argv[1], int(sys.argv[2])
samples, start = [], time.monotonic()
for i in range(count):
    out = subprocess.run([sys.executable, payload], capture_output=True, text=True).stdout
    try:
        samples.append(json.loads(out)["replica"]["seconds_behind"])
    except (ValueError, KeyError, TypeError):
        samples.append(None)
    time.sleep(max(0.0, start + i + 1 - time.monotonic()))
print(json.dumps({"samples": samples, "seconds": time.monotonic() - start}))
"""


def module_payload(lab: Lab, host: str) -> str:
    """Path on `host` of the replication_info module's own AnsiballZ payload (kept after one run)."""
    env = dict(os.environ, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_PIPELINING="0", ANSIBLE_NOCOLOR="1")
    proc = run(
        [lab.bin("ansible"), "-i", lab.inventory, host, "-b", "-m", "webinfra.distributed.replication_info", "-vvv"],
        env=env,
    )
    paths = re.findall(r"(/\S+/AnsiballZ_replication_info\.py)", proc.stdout)
    if not paths:
        raise SystemExit("bench: could not find the replication_info payload on the replica")
    return paths[-1]


SYSBENCH_INTERVAL = re.compile(r"^\[\s*([\d.]+)s\s*\] thds: \d+ tps: ([\d.]+) .*?lat \(ms,95%\): ([\d.]+)", re.M)


def sysbench_intervals(text: str) -> list[list[float]]:
    """[second, tps, 95th percentile latency ms] of each `--report-interval` line of sysbench."""
    return [[float(at), float(tps), float(p95)] for at, tps, p95 in SYSBENCH_INTERVAL.findall(text)]


def bench_account(lab: Lab, primary: str, client_addr: str, password: str) -> None:
    """The sbtest database and an account for the bench client on the primary (replicated)."""
    statements = (
        "CREATE DATABASE IF NOT EXISTS sbtest; "
        f"CREATE OR REPLACE USER 'bench'@'{client_addr}' IDENTIFIED BY '{password}'; "
        f"GRANT ALL ON sbtest.* TO 'bench'@'{client_addr}'"
    )
    lab.sh(primary, f"mariadb -N -B -e {shlex.quote(statements)}")


def bench_replication(lab: Lab, seconds: int, threads: int) -> dict:
    primary = lab.groups["db_primary"][0]
    replica = lab.groups["db_replicas"][0]
    client_addr = lab.address(CLIENT)
    primary_addr = lab.address(primary)
    password = "bench-" + os.urandom(8).hex()
    sql = "mariadb -N -B -e {}".format
    log("replication: bench database and account on the primary (replicated)")
    bench_account(lab, primary, client_addr, password)
    common = (
        f"--db-driver=mysql --mysql-host={primary_addr} --mysql-user=bench --mysql-password={password} "
        f"--mysql-db=sbtest --tables=4 --table-size=10000 --threads={threads}"
    )
    payload = module_payload(lab, replica)
    out: dict = {"seconds": seconds, "threads": threads, "primary": primary, "replica": replica}
    try:
        with Hole(lab, primary, 3306, client_addr):
            log("replication: sysbench prepare (4 tables x 10000 rows)")
            lab.sh(
                CLIENT,
                f"sysbench oltp_write_only {common} cleanup >/dev/null 2>&1; sysbench oltp_write_only {common} prepare",
                timeout=600,
            )
            samples: dict = {}

            def sample():
                proc = lab.sh(
                    replica, f"python3 -c {shlex.quote(SAMPLER)} {payload} {seconds + 5}", timeout=seconds * 3 + 60
                )
                samples.update(json.loads(proc.stdout))

            sampler_thread = threading.Thread(target=sample, daemon=True)
            sampler_started = time.time()
            sampler_thread.start()
            log(f"replication: sysbench oltp_write_only {seconds} s, {threads} threads; lag sampled every second ...")
            started = time.time()
            proc = lab.sh(
                CLIENT,
                f"sysbench oltp_write_only {common} --time={seconds} --report-interval=1 run",
                timeout=seconds + 120,
            )
            sampler_thread.join(timeout=seconds * 4 + 120)
            tps = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", proc.stdout)
            p95 = re.search(r"95th percentile:\s+([\d.]+)", proc.stdout)
            lags = [float(v) for v in samples.get("samples", []) if v is not None]
            sampling_seconds = samples.get("seconds", time.time() - started) / max(1, len(samples.get("samples", [])))
            out.update(
                {
                    "tps": float(tps.group(1)) if tps else None,
                    "latency_p95_ms": float(p95.group(1)) if p95 else None,
                    "lag_samples": len(lags),
                    "lag_sampling_interval_seconds": round(sampling_seconds, 2),
                    "lag_max_seconds": max(lags) if lags else None,
                    "lag_p99_seconds": percentile(lags, 99),
                    # Over time, from the start of the run: the charts' data.
                    "series": {
                        "tps": sysbench_intervals(proc.stdout),
                        "lag_start_seconds": round(sampler_started - started, 2),
                        "lag_interval_seconds": round(sampling_seconds, 3),
                        "lag": samples.get("samples", []),
                    },
                }
            )
            log("replication: waiting for the replica to catch up, then comparing checksums")
            tables = ", ".join(f"sbtest.sbtest{i}" for i in range(1, 5))
            checksum = f"CHECKSUM TABLE {tables}"
            deadline = time.time() + 120
            while True:
                a = lab.sh(primary, sql(shlex.quote(checksum))).stdout
                b = lab.sh(replica, sql(shlex.quote(checksum))).stdout
                if a == b or time.time() > deadline:
                    break
                time.sleep(1)
            out["checksums_match"] = a == b
            out["checksums"] = a.strip().splitlines()
            lab.sh(CLIENT, f"sysbench oltp_write_only {common} cleanup >/dev/null", check=False)
    finally:
        lab.sh(
            primary,
            sql(shlex.quote(f"DROP USER IF EXISTS 'bench'@'{client_addr}'; DROP DATABASE IF EXISTS sbtest")),
            check=False,
        )
    log(
        f"replication: {out.get('tps')} tps; lag max "
        f"{out.get('lag_max_seconds')} s, p99 {out.get('lag_p99_seconds')} s "
        f"({out.get('lag_samples')} samples); checksums match: {out.get('checksums_match')}"
    )
    return out


def replication_lines(x: dict) -> list[str]:
    """The replication step's rows of the results table."""
    lines: list[str] = []
    lines.append(
        f"| sysbench oltp_write_only {x['seconds']} s x {x['threads']} "
        f"threads | {x['tps']} tps, p95 {x['latency_p95_ms']} ms |"
    )
    lines.append(
        f"| replica lag ({x['lag_samples']} samples, every {x['lag_sampling_interval_seconds']} "
        f"s) | max {x['lag_max_seconds']} s, p99 {x['lag_p99_seconds']} s |"
    )
    lines.append(f"| checksums primary = replica | {x['checksums_match']} |")
    return lines


REPLICATION_LAG_P99_SECONDS_MAX = 1


def replication_judge(x: dict) -> dict:
    if x.get("lag_p99_seconds") is None:
        return {}
    return {"replication_lag_p99_at_most_1s": x["lag_p99_seconds"] <= REPLICATION_LAG_P99_SECONDS_MAX}


STEP = Step(
    "replication",
    "sysbench on the primary while the replica's lag is sampled every second",
    run=lambda ctx: bench_replication(ctx.lab, ctx.args.sysbench_seconds, ctx.args.sysbench_threads),
    lines=replication_lines,
    judge=replication_judge,
    needs_client=True,
)
