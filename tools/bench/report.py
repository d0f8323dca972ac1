"""The results: every step's verdicts on its targets and its rows of the results table."""

from __future__ import annotations

from bench.steps import REGISTRY


def judge(results: dict) -> dict:
    """Every step's verdicts on its targets (reported, never asserted)."""
    verdict = {}
    for name, result in results.items():
        verdict.update(REGISTRY[name].judge(result))
    return verdict


def markdown(report: dict) -> str:
    m, r = report["machine"], report["results"]
    lines = [
        f"# webinfra benchmark - {report['started']}",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, {m['podman']}; "
        f"lab: Debian {report['debian']}, every host a container on this machine.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    for name, step in REGISTRY.items():
        if name in r:
            lines += step.lines(r[name])
    lines += ["", "Targets (reported, not asserted):", ""]
    lines += [f"- {k}: {'met' if v else 'NOT met'}" for k, v in report["targets_met"].items()]
    return "\n".join(lines) + "\n"
