"""The registry of the benchmark steps."""

from __future__ import annotations

from bench import backup, console, datapath, deploy, faults, ha, mitogen, replication, scaling

# The steps in the order they run; a new step is a module with STEP, added here.
REGISTRY = {
    step.name: step
    for step in (
        deploy.STEP,
        mitogen.STEP,
        datapath.STEP,
        faults.STEP,
        replication.STEP,
        console.STEP,
        backup.STEP,
        ha.STEP,
        scaling.STEP,
    )
}
STEPS = tuple(REGISTRY)
