"""Charts of a `make bench` run, drawn from its measured data (tools/bench's JSON).

    .venv/bin/python tools/charts.py bench/results/latest.json [--docs docs/images]

Writes next to the results, named after the run (<time>-<chart>.png):
  failover     every request of the loads through the virtual IP as a point (start time against
               response time, green answered, red failed) for the balancer failover, the
               switchover and each automatic database failover trial, the fault and the longest
               stretch without an answer marked
  lag          the replica's lag and sysbench's transactions per second over the replication run
  datapath     requests per second and latency percentiles (p50..p99) through the balancer and
               direct to one web server, for the static and the application page
  deploy       site.yml times (fresh, no-op re-run, check) of the runs in --history (docs/deploy-history.json)
               and of every run in the results directory
  matrix       the failover fault matrix (step ha): each trial's write window per fault as a point,
               its median marked, the targets (median 10 s, worst 15 s) as lines, lost acknowledged
               writes and samples with two writable servers beside each fault; also from a
               <time>-matrix.json the bench saves after every trial
With --docs, the charts are also copied there as bench-<chart>.png (with the run's console
screenshot), for docs/BENCHMARKS.md. The data handling is pure and unit-tested; drawing needs
matplotlib (requirements-bench.txt, installed by `make bench`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from pathlib import Path

OK_COLOUR, FAILED_COLOUR, WINDOW_COLOUR = "#2e8b57", "#c62828", "#ffcc80"


# --- data (pure) ---------------------------------------------------------------------------------
def longest_outage(requests: list[list[float]]) -> tuple[float, float] | None:
    """The longest stretch (from, to) without a successful answer between the first and the last
    request of a timeline ([start, duration, ok] rows), counted from answer to answer; the end of
    the load counts when it ended in failures. None when every stretch is shorter than the
    longest single request (no outage)."""
    answers = sorted(start + duration for start, duration, ok in requests if ok)
    if not answers:
        return None
    last_end = max(start + duration for start, duration, _ok in requests)
    marks = answers + ([last_end] if last_end > answers[-1] else [])
    gaps = [(b - a, a, b) for a, b in zip(marks, marks[1:], strict=False)]
    if not gaps:
        return None
    longest = max(duration for _start, duration, _ok in requests)
    width, start, end = max(gaps)
    return (start, end) if width > longest else None


def failover_panels(report: dict) -> list[dict]:
    """The failover timelines of a report, one panel each: title, rows (label, requests), marks."""
    ha = report.get("results", {}).get("ha") or {}
    titles = {
        "lb_failover": lambda x: (
            f"Balancer failover (GET via the virtual IP): {x['max_gap_seconds']} s without an "
            f"answer, {x['failed']} of {x['requests']} failed"
        ),
        "switchover": lambda x: (
            f"Switchover (POST via the writer endpoint): {x['write_window_seconds']} s without an "
            f"acknowledged write, {x['lost_acknowledged_writes']} of {x['acknowledged_writes']} lost"
        ),
    }
    panels = [
        {
            "title": title(ha[key]),
            "rows": [("GET" if key == "lb_failover" else "POST", ha[key]["timeline"]["requests"])],
            "marks": ha[key]["timeline"]["marks"],
        }
        for key, title in titles.items()
        if "timeline" in (ha.get(key) or {})
    ]
    trials = [t for t in (ha.get("auto_failover") or {}).get("trials", []) if "timeline" in t]
    if trials:
        x = ha["auto_failover"]
        panels.append(
            {
                "title": f"Automatic database failover, leader frozen (POST): write window median "
                f"{x['write_window_median_seconds']} s, worst {x['write_window_worst_seconds']} s, "
                f"{x['lost_acknowledged_writes']} acknowledged writes lost",
                "rows": [
                    (f"trial {n}: {t['frozen']} -> {t['promoted']}", t["timeline"]["requests"])
                    for n, t in enumerate(trials, 1)
                ],
                "marks": {"leader frozen": 0.0},
                "row_marks": [t["timeline"]["marks"].get("new leader writable") for t in trials],
            }
        )
    return panels


def lag_series(report: dict) -> dict | None:
    """Seconds from the start of the sysbench run against lag and tps (None when not measured)."""
    x = (report.get("results", {}).get("replication") or {}).get("series")
    if not x:
        return None
    start, step = x["lag_start_seconds"], x["lag_interval_seconds"] or 1.0
    lag = [(round(start + i * step, 2), v) for i, v in enumerate(x["lag"]) if v is not None]
    return {
        "lag": lag,
        "tps": [(at, tps) for at, tps, _p95 in x["tps"]],
        "p95": [(at, p95) for at, _tps, p95 in x["tps"]],
    }


def datapath_table(report: dict) -> dict | None:
    """{page: {where: {rps, p50_ms, p75_ms, p90_ms, p99_ms}}} of the data-path step."""
    d = report.get("results", {}).get("datapath")
    if not d:
        return None
    table: dict = {}
    for key, value in d.items():
        if isinstance(value, dict) and "rps" in value:
            page, _sep, where = key.partition("_")
            table.setdefault(page, {})[where] = value
    return table


def deploy_history(paths: list[Path], earlier: list[dict] | None = None) -> list[dict]:
    """The deploy figures of `earlier` runs (a history file's entries, in their order), then of
    every results file that has them and is not among them, oldest first."""
    earlier = list(earlier or [])
    known = {run.get("started") for run in earlier}
    runs = []
    for path in paths:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        deploy = report.get("results", {}).get("deploy")
        if deploy and path.stem != "latest":
            runs.append(
                {
                    "started": report["started"],
                    **{key: deploy[key]["seconds"] for key in ("fresh", "noop_rerun", "check") if key in deploy},
                }
            )
    return earlier + sorted((r for r in runs if r["started"] not in known), key=lambda r: r["started"])


def record_deploy(history: Path, report: dict) -> bool:
    """Append the report's deploy figures to the history file (once); True when it was added."""
    deploy = report.get("results", {}).get("deploy")
    runs = json.loads(history.read_text()) if history.exists() else []
    if not deploy or any(run.get("started") == report["started"] for run in runs):
        return False
    runs.append({"started": report["started"], **{k: deploy[k]["seconds"] for k in ("fresh", "noop_rerun", "check")}})
    history.write_text("[\n" + ",\n".join("  " + json.dumps(run) for run in runs) + "\n]\n")
    return True


# --- drawing -------------------------------------------------------------------------------------
def matrix_series(report: dict) -> list[dict] | None:
    """The fault matrix's rows (a results JSON's ha step, or the rows the bench saves after every
    trial): fault, whether it ends in a failover, each trial's write window, lost and
    double-writable counts."""
    rows = ((report.get("results") or {}).get("ha") or {}).get("matrix")
    if rows is None and report and all(isinstance(r, dict) and "cells" in r for r in report.values()):
        rows = report
    if not rows:
        return None
    return [
        {
            "fault": row["fault"],
            "failover": row.get("failover", True),
            "windows": [c["window_s"] for c in row["cells"] if c.get("window_s") is not None],
            "median": row.get("window_median_seconds"),
            "lost": row.get("lost_acknowledged_writes", 0),
            "acked": row.get("acknowledged_writes", 0),
            "double": row.get("double_writable_samples", 0),
            "failed": len(row.get("failed_trials") or []),
        }
        for row in rows.values()
        if row.get("cells") or row.get("failed_trials")
    ]


def draw_matrix(series: list[dict], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10.0, 0.7 * len(series) + 1.4))
    labels = []
    for index, row in enumerate(reversed(series)):
        colour = "#1565c0" if row["failover"] else "#9e9e9e"
        ax.scatter(row["windows"], [index] * len(row["windows"]), s=14, color=colour, alpha=0.7, zorder=3)
        if row["median"] is not None:
            ax.scatter([row["median"]], [index], marker="|", s=260, color="black", zorder=4)
        note = f"{len(row['windows'])} trials, lost {row['lost']} of {row['acked']}, two writable {row['double']}"
        if row["failed"]:
            note += f", {row['failed']} could not run"
        labels.append("\n".join([*textwrap.wrap(row["fault"], 48), note]))
    ax.axvline(10, color="#ef6c00", linestyle="--", linewidth=1, label="median target (10 s)")
    ax.axvline(15, color=FAILED_COLOUR, linestyle=":", linewidth=1, label="worst-case target (15 s)")
    ax.set_yticks(range(len(series)), labels, fontsize=6)
    ax.set_xlabel("write window: longest stretch without an acknowledged write (s)")
    ax.set_title("failover fault matrix (blue: failover expected; bar: median)", fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def _pyplot():
    import matplotlib  # noqa: PLC0415 - only for drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def draw_failover(panels: list[dict], path: Path) -> None:
    plt = _pyplot()
    heights = [1.6 + 0.9 * len(p["rows"]) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, sum(heights)), gridspec_kw={"height_ratios": heights})
    axes = axes if len(panels) > 1 else [axes]
    for ax, panel in zip(axes, panels, strict=True):
        labels = []
        for row, (label, requests) in enumerate(panel["rows"]):
            labels.append(label)
            outage = longest_outage(requests)
            if outage:
                ax.add_patch(
                    plt.Rectangle((outage[0], row), outage[1] - outage[0], 1, color=WINDOW_COLOUR, alpha=0.6, lw=0)
                )
            for ok, colour in ((1, OK_COLOUR), (0, FAILED_COLOUR)):
                points = [(s, d) for s, d, good in requests if good == ok]
                if points:
                    # Each request at its start; its height in the row is its response time (capped at 3 s).
                    ax.scatter(
                        [start for start, _duration in points],
                        [row + 0.1 + 0.8 * min(d, 3.0) / 3.0 for _start, d in points],
                        s=6,
                        color=colour,
                        label=("answered" if ok else "failed") if row == 0 else None,
                    )
            for at in (panel.get("row_marks") or [])[row : row + 1]:
                if at is not None:
                    ax.plot([at, at], [row, row + 1], color="#1565c0", lw=2)
        for name, at in panel["marks"].items():
            ax.axvline(at, color="#444", ls="--", lw=1)
            ax.text(at, len(panel["rows"]) + 0.05, " " + name, fontsize=8, va="bottom")
        ax.set_ylim(0, len(panel["rows"]) + 0.45)
        ax.set_yticks([i + 0.5 for i in range(len(labels))], labels, fontsize=8)
        ax.set_title(panel["title"], fontsize=9, loc="left")
        ax.set_xlabel("seconds from the fault (point height in a row: response time, 0-3 s)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        handles, names = ax.get_legend_handles_labels()
        if panel.get("row_marks"):
            handles.append(plt.Line2D([], [], color="#1565c0", lw=2))
            names.append("new leader writable")
        handles.append(plt.Rectangle((0, 0), 1, 1, color=WINDOW_COLOUR, alpha=0.6))
        names.append("longest time without an answer")
        ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_lag(series: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.plot(
        [at for at, _value in series["tps"]],
        [value for _at, value in series["tps"]],
        color="#1565c0",
        lw=1,
        label="sysbench tps",
    )
    ax.set_ylabel("transactions/s (primary)", color="#1565c0")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds from the start of sysbench oltp_write_only")
    lag_ax = ax.twinx()
    lag_ax.step(
        [at for at, _value in series["lag"]],
        [value for _at, value in series["lag"]],
        where="post",
        color=FAILED_COLOUR,
        lw=1.5,
        label="replica lag (Seconds_Behind_Master, sampled every second)",
    )
    top = max([value for _at, value in series["lag"]] + [1])
    lag_ax.set_ylim(0, top * 1.5 + 1)
    lag_ax.set_ylabel("replica lag (s)", color=FAILED_COLOUR)
    lines = ax.get_legend_handles_labels()
    more = lag_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")
    ax.set_title("Replica lag under write load", fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_datapath(table: dict, path: Path) -> None:
    plt = _pyplot()
    pages = [p for p in ("static", "app") if p in table]
    fig, axes = plt.subplots(1, 1 + len(pages), figsize=(12, 3.8))
    colours = {"balancer": "#1565c0", "direct": "#2e8b57", "balancer_one_backend": "#8e24aa"}
    names = {
        "balancer": "via balancer",
        "direct": "direct to one web server",
        "balancer_one_backend": "via balancer, that server only",
    }
    ax = axes[0]
    bars, groups, x = [], [], 0
    for page in pages:
        start = x
        for where, result in table[page].items():
            bars.append((x, result["rps"] or 0, colours.get(where, "#999")))
            x += 1
        groups.append(((start + x - 1) / 2, f"{page} page"))
        x += 0.6
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    ax.set_xticks([g[0] for g in groups], [g[1] for g in groups], fontsize=8)
    ax.legend(
        [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()],
        [names[key] for key in colours],
        fontsize=7,
        loc="upper right",
    )
    ax.set_ylabel("requests/s")
    ax.set_title("Throughput", fontsize=10, loc="left")
    for b in bars:
        ax.text(b[0], b[1], f"{b[1]:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, max(b[1] for b in bars) * 1.35 + 1)
    for ax, page in zip(axes[1:], pages, strict=True):
        for where, result in table[page].items():
            pcts = [p for p in (50, 75, 90, 99) if result.get(f"p{p}_ms") is not None]
            ax.plot(
                pcts,
                [result[f"p{p}_ms"] for p in pcts],
                marker="o",
                color=colours.get(where, "#999"),
                label=names.get(where, where),
            )
        ax.set_xticks([50, 75, 90, 99], ["p50", "p75", "p90", "p99"])
        ax.set_ylabel("latency (ms)")
        ax.set_yscale("log")
        ax.set_title(f"Latency percentiles, {page} page", fontsize=10, loc="left")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_deploy(runs: list[dict], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(runs) + 3), 3.6))
    width = 0.27
    for offset, (key, label, colour) in enumerate(
        (
            ("fresh", "fresh hosts", "#1565c0"),
            ("noop_rerun", "no-op re-run", "#2e8b57"),
            ("check", "--check", "#f9a825"),
        )
    ):
        xs = [i + (offset - 1) * width for i in range(len(runs))]
        values = [r.get(key) or 0 for r in runs]
        ax.bar(xs, values, width, label=label, color=colour)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    labels = [r.get("label") or r["started"].replace("T", "\n") for r in runs]
    ax.set_xticks(range(len(runs)), labels, fontsize=7)
    ax.set_ylabel("site.yml seconds")
    ax.set_title(
        "site.yml on the lab across make bench runs (each run on the machine of its day, whose\n"
        "speed varies from hour to hour: compare figures within a run, trends across runs)",
        fontsize=9,
        loc="left",
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_series(report: dict) -> dict | None:
    """The scaling step's shapes: one replica (the curve over the number of hosts) and the others."""
    shapes = ((report.get("results") or {}).get("scaling") or {}).get("shapes") or []
    if not shapes:
        return None
    curve = sorted((s for s in shapes if s["replicas"] == 1), key=lambda s: s["hosts"])
    return {"curve": curve, "others": [s for s in shapes if s["replicas"] != 1]}


def draw_scaling(series: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    curve = series["curve"]
    for key, label, colour in (
        ("fresh_seconds", "fresh hosts", "#1565c0"),
        ("noop_seconds", "no-op re-run", "#2e8b57"),
        ("module_floor_seconds", "one module run on every host", "#9e9e9e"),
    ):
        xs, ys = [s["hosts"] for s in curve], [s[key] for s in curve]
        ax.plot(xs, ys, marker="o", label=label, color=colour)
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        for other in series["others"]:
            ax.scatter([other["hosts"]], [other[key]], marker="s", color=colour)
    ax.set_xticks([s["hosts"] for s in curve], [f"{s['hosts']}\n({s['webs']} web)" for s in curve], fontsize=7)
    for other in series["others"]:
        ax.annotate(
            f"{other['replicas']} replicas: fresh {other['fresh_seconds']:.0f}, no-op {other['noop_seconds']:.0f}",
            (other["hosts"], other["fresh_seconds"]),
            textcoords="offset points",
            xytext=(8, -14),
            fontsize=7,
        )
    ax.set_xlabel("hosts (one balancer; every web server hosts a database)")
    ax.set_ylabel("site.yml seconds")
    ax.set_title("site.yml as the lab grows (lines: 1 replica; squares: 2 replicas)", fontsize=9, loc="left")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("results", type=Path, help="a results JSON of tools/bench (bench/results/latest.json)")
    parser.add_argument("--docs", type=Path, help="also copy the charts there as bench-<chart>.png")
    parser.add_argument(
        "--history",
        type=Path,
        help="earlier runs' deploy figures (JSON list), drawn first; with --docs, this run's are added to it",
    )
    args = parser.parse_args(argv)
    report = json.loads(args.results.read_text())
    out, stem = args.results.parent, report.get("started") or args.results.stem
    written = {}
    matrix = matrix_series(report)
    if matrix:
        written["matrix"] = out / (f"{stem}-matrix.png" if "started" in report else f"{stem}.png")
        draw_matrix(matrix, written["matrix"])
    if "started" not in report:  # the matrix's own file (<time>-matrix.json): nothing else to draw
        return publish(written, args)
    panels = failover_panels(report)
    if panels:
        written["failover"] = out / f"{stem}-failover.png"
        draw_failover(panels, written["failover"])
    series = lag_series(report)
    if series and series["lag"]:
        written["lag"] = out / f"{stem}-lag.png"
        draw_lag(series, written["lag"])
    table = datapath_table(report)
    if table:
        written["datapath"] = out / f"{stem}-datapath.png"
        draw_datapath(table, written["datapath"])
    scaling = scaling_series(report)
    if scaling:
        written["scaling"] = out / f"{stem}-scaling.png"
        draw_scaling(scaling, written["scaling"])
    earlier = json.loads(args.history.read_text()) if args.history and args.history.exists() else []
    runs = deploy_history(sorted(out.glob("*.json")), earlier)
    if args.docs and args.history and record_deploy(args.history, report):
        print(f"charts: this run's deploy figures added to {args.history}")
    if runs:
        written["deploy"] = out / f"{stem}-deploy.png"
        draw_deploy(runs, written["deploy"])
    console = out / f"{stem}-console.png"
    if console.exists():
        written["console"] = console
    return publish(written, args)


def publish(written: dict, args: argparse.Namespace) -> int:
    """Say where each chart went; with --docs, copy it there as bench-<chart>.png."""
    for name, path in written.items():
        print(f"charts: {name}: {path}")
        if args.docs:
            args.docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, args.docs / f"bench-{name}.png")
    if not written:
        print(f"charts: {args.results} holds no data to draw")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
