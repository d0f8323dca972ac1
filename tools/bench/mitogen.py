"""The mitogen step: site.yml with Ansible's linear strategy and with Mitogen's, alternately."""

from __future__ import annotations

from pathlib import Path

from bench.common import ROOT, Lab, Step, log
from bench.deploy import recreate


def mitogen_env() -> dict[str, str]:
    """Environment that runs ansible-playbook with Mitogen's linear strategy (requirements-bench.txt)."""
    try:
        import ansible_mitogen  # noqa: PLC0415 - optional, installed by `make bench`
    except ImportError as exc:
        raise SystemExit("bench: mitogen is not installed: pip install -r requirements-bench.txt") from exc
    plugins = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    # Mitogen's own SSH command line enforces host keys when Ansible checks them, over the lab's
    # ssh_config (which ignores them for its throw-away containers): off for the lab only.
    return {
        "ANSIBLE_STRATEGY_PLUGINS": str(plugins),
        "ANSIBLE_STRATEGY": "mitogen_linear",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }


def bench_mitogen(lab: Lab, rounds: int = 2) -> dict:
    """site.yml with Ansible's linear strategy and with Mitogen's, alternately: no-op re-runs
    `rounds` times each on the deployed lab, then one fresh deploy each on re-created hosts
    (the Mitogen one leaves the lab deployed)."""
    site = str(ROOT / "site.yml")
    env = mitogen_env()
    runs: dict[str, list[dict]] = {"linear": [], "mitogen": []}
    for _round in range(rounds):
        for name, extra in (("linear", None), ("mitogen", env)):
            seconds, changed, _output = lab.playbook(site, extra_env=extra)
            runs[name].append({"seconds": round(seconds, 1), "changed": changed})
            log(f"mitogen: no-op re-run, {name}: {seconds:.1f} s, changed={changed}")
    fresh = {}
    for name, extra in (("linear", None), ("mitogen", env)):
        recreate(lab)
        seconds, changed, _output = lab.playbook(site, extra_env=extra)
        fresh[name] = {"seconds": round(seconds, 1), "changed": changed}
        log(f"mitogen: fresh deploy, {name}: {seconds:.1f} s, changed={changed}")
    noop = {name: round(min(r["seconds"] for r in rows), 1) for name, rows in runs.items()}
    return {
        "noop_runs": runs,
        "noop_best": noop,
        "fresh": fresh,
        "ratios": {
            "noop_mitogen_to_linear": round(noop["mitogen"] / noop["linear"], 2),
            "fresh_mitogen_to_linear": round(fresh["mitogen"]["seconds"] / fresh["linear"]["seconds"], 2),
        },
    }


def mitogen_lines(d: dict) -> list[str]:
    return [
        f"| site.yml no-op re-run, linear / Mitogen (best of {len(d['noop_runs']['linear'])}) | "
        f"{d['noop_best']['linear']} s / {d['noop_best']['mitogen']} s "
        f"(ratio {d['ratios']['noop_mitogen_to_linear']}) |",
        f"| site.yml on fresh hosts, linear / Mitogen | {d['fresh']['linear']['seconds']} s / "
        f"{d['fresh']['mitogen']['seconds']} s (ratio {d['ratios']['fresh_mitogen_to_linear']}; changed "
        f"{d['fresh']['linear']['changed']} / {d['fresh']['mitogen']['changed']}) |",
    ]


STEP = Step(
    "mitogen",
    "site.yml with Ansible's linear strategy and with Mitogen's, alternately",
    run=lambda ctx: bench_mitogen(ctx.lab),
    lines=mitogen_lines,
)
