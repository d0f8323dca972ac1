"""The command line: the chosen steps in the registry's order, then the results as JSON and Markdown."""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from bench.common import ROOT, Context, Lab, ensure_client, log, machine
from bench.report import judge, markdown
from bench.scaling import SCALING_SHAPES
from bench.steps import REGISTRY, STEPS
from failover_matrix import FAULTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="webinfra benchmarks on the local lab; steps: "
        + "; ".join(f"{s.name}: {s.summary}" for s in REGISTRY.values())
    )
    parser.add_argument("-i", "--inventory", default=str(ROOT / "inventories" / "lab"))
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--wrk-seconds", type=int, default=20)
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument("--sysbench-seconds", type=int, default=60)
    parser.add_argument("--sysbench-threads", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--ha-inventory", default=str(ROOT / "inventories" / "lab-ha"))
    parser.add_argument("--failover-trials", type=int, default=5)
    parser.add_argument(
        "--matrix-trials", type=int, default=10, help="trials of each failover fault of the matrix (0: no matrix)"
    )
    parser.add_argument(
        "--matrix-quick", type=int, default=3, help="trials of the matrix's faults that expect no failover"
    )
    parser.add_argument(
        "--matrix-faults",
        default="",
        help="comma-separated subset of the matrix's faults (default: all); "
        "the rows are saved to <out>/<started>-matrix.json after every trial",
    )
    parser.add_argument(
        "--scaling-shapes",
        default=",".join(f"{w}x{r}" for w, r in SCALING_SHAPES),
        help="the scaling step's labs, WEBSxREPLICAS, comma-separated",
    )
    parser.add_argument("--console-url", default="https://127.0.0.1:9090/consoles/webinfra.html")
    parser.add_argument("--backup-gib", type=float, default=1.0, help="size of the backup step's database")
    args = parser.parse_args(argv)
    steps = [s for s in args.only.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown step(s) {sorted(unknown)}; allowed: {', '.join(STEPS)}")
    chosen = [REGISTRY[name] for name in STEPS if name in steps]
    bad = {k for k in args.matrix_faults.split(",") if k} - set(FAULTS)
    if bad:
        parser.error(f"unknown --matrix-faults {sorted(bad)}; allowed: {', '.join(FAULTS)}")

    lab = Lab(args.inventory)
    if any(step.needs_lab for step in chosen) and not lab.ca.exists():
        raise SystemExit(f"bench: {lab.ca} is missing: run `make lab` first")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(lab=lab, args=args, started=started, out=out)
    results: dict = {}
    client_ready = False
    for step in chosen:
        if step.needs_client and not client_ready:
            ensure_client(lab)
            client_ready = True
        results[step.name] = step.run(ctx)
    report = {"started": started, "debian": lab.debian, "machine": machine(), "results": results}
    report["targets_met"] = judge(results)
    text = markdown(report)
    for name in (started, "latest"):
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / f"{name}.md").write_text(text)
    print()
    print(text)
    log(f"results: {out / (started + '.json')} and .md")
    return 0
