"""The failover fault matrix on the ha step's lab (three database hosts): every fault of
tools/failover_matrix.py several times, its write window's median and worst case, lost
acknowledged writes (through the endpoint and straight) and samples with two writable servers."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.common import CLIENT, ROOT, Lab, log
from failover_matrix import FAULTS, Matrix, trial

# The faults that end in a new leader are tried `trials` times; the others (no failover
# expected: a lossy link, etcd's state loss, a configuration change) `quick` times.
QUICK = ("lossy-etcd-link", "etcd-keyspace-loss", "etcd-recreated", "etcd-recreated-at-once", "config-change")
WINDOW_MEDIAN_MAX = 10.0
WINDOW_WORST_MAX = 15.0


def bench_matrix(  # noqa: PLR0913 - the matrix's settings
    lab: Lab, vip: str, trials: int, quick: int, faults: list[str] | None = None, save: Path | None = None
) -> dict:
    """Every fault of `faults` (default: all) `trials` (or `quick`) times; the rows so far are
    written to `save` after every trial, so a run that stops early keeps what it measured."""
    dbs = list(dict.fromkeys(lab.groups["db_primary"] + lab.groups["db_replicas"]))
    ca = lab.sh(CLIENT, "cat /root/ca.pem").stdout

    def rebuild(host: str) -> None:
        lab.playbook(str(ROOT / "playbooks" / "rebuild.yml"), "-e", f"host={host}")

    def playbook(*args: str) -> None:
        lab.playbook(str(ROOT / args[0]), *args[1:])

    root = Path(lab.inventory) / ".pki" / "etcd" / "root"
    m = Matrix(
        lab.name,
        dbs,
        lab.groups["webservers"][0],
        CLIENT,
        vip,
        ca,
        rebuild=rebuild,
        playbook=playbook,
        etcd_root_password=root.read_text().strip() if root.exists() else "",
        balancers=tuple(lab.groups["loadbalancers"]),
    )
    rows: dict = {}
    for kind in faults or list(FAULTS):
        count = quick if kind in QUICK else trials
        cells: list[dict] = []
        errors: list[str] = []
        for number in range(1, count + 1):
            log(f"ha: fault matrix, {kind} {number}/{count}")
            try:
                cell = trial(m, kind)
            except Exception as exc:  # noqa: BLE001 - one trial's failure, recorded: the matrix goes on
                errors.append(f"{type(exc).__name__}: {str(exc)[-2000:]}")
                log(f"ha:   {kind} {number}/{count} failed: {type(exc).__name__}: {str(exc)[-500:]}")
            else:
                log(f"ha:   {cell.summary()}")
                cells.append(cell.as_dict())
            rows[kind] = matrix_row(kind, cells, errors)
            if save is not None:
                save.write_text(json.dumps(rows, indent=2) + "\n")
    # The steps after this one expect the inventory's primary to lead, every replica healthy.
    if m.restore() != dbs[0]:
        lab.playbook(str(ROOT / "playbooks" / "switchover.yml"), "-e", f"new_primary={dbs[0]}")
        m.restore()
    return rows


def matrix_row(kind: str, cells: list[dict], errors: list[str]) -> dict:
    """One fault's row from its trials' cells and the errors of the trials that could not run."""
    windows = [c["window_s"] for c in cells if c["window_s"] is not None]
    return {
        "fault": FAULTS[kind].name,
        "failover": FAULTS[kind].failover,
        "trials": len(cells),
        "failed_trials": errors,
        "window_median_seconds": round(statistics.median(windows), 2) if windows else None,
        "window_worst_seconds": max(windows) if windows else None,
        "lost_acknowledged_writes": sum(len(c["lost"]) + len(c["direct_lost"]) for c in cells),
        "acknowledged_writes": sum(c["acked"] + c["direct_acked"] for c in cells),
        "double_writable_samples": sum(len(c["double_writable"]) for c in cells),
        "leaders": [[c["leader_before"], c["leader_after"]] for c in cells],
        "cells": cells,
    }


def matrix_lines(rows: dict) -> list[str]:
    lines = [
        "",
        "| fault | trials | write window median | worst | lost acknowledged writes | samples with two writable |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        if row.get("failed_trials"):
            lines.append(f"| {row['fault']} | {len(row['failed_trials'])} trial(s) failed to run | | | | |")
        lines.append(
            f"| {row['fault']} | {row['trials']} | {row['window_median_seconds']} s | {row['window_worst_seconds']} s "
            f"| {row['lost_acknowledged_writes']} of {row['acknowledged_writes']} | {row['double_writable_samples']} |"
        )
    return lines


def matrix_judge(rows: dict) -> dict:
    failovers = [r for r in rows.values() if r["failover"] and r["window_median_seconds"] is not None]
    return {
        "matrix_0_lost_never_two_writable": all(
            r["lost_acknowledged_writes"] == 0 and r["double_writable_samples"] == 0 and not r.get("failed_trials")
            for r in rows.values()
        ),
        "matrix_failover_median_at_most_10s_worst_at_most_15s": all(
            r["window_median_seconds"] <= WINDOW_MEDIAN_MAX and r["window_worst_seconds"] <= WINDOW_WORST_MAX
            for r in failovers
        ),
    }
