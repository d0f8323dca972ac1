"""The faults step: a web server's application SIGKILLed under load."""

from __future__ import annotations

import json
import time

from bench.common import CLIENT, Lab, Step, get_load, log


def wait_state(lab: Lab, lb: str, server: str, state: str, since: float, timeout: float = 60) -> float | None:
    """Seconds from `since` until HAProxy reports `server` in `state` (polled every 0.2 s)."""
    stat = "echo 'show stat' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock"
    while time.time() - since < timeout:
        for line in lab.sh(lb, stat).stdout.splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[1] == server and fields[17].startswith(state):
                return round(time.time() - since, 1)
        time.sleep(0.2)
    return None


def bench_faults(lab: Lab) -> dict:
    lb = lab.groups["loadbalancers"][0]
    victim = lab.groups["webservers"][0]
    lab.sh(CLIENT, "rm -f /root/load.json /root/load.ready /root/load.stop")
    load = get_load(lab, lb, 4, 40, "--ready-file /root/load.ready > /root/load.json")
    deadline = time.time() + 30
    while lab.sh(CLIENT, "test -e /root/load.ready", check=False).returncode != 0:
        if time.time() > deadline:
            raise SystemExit("bench: the load did not start")
        time.sleep(0.5)
    time.sleep(5)
    log(f"faults: SIGKILL of the application on {victim} under load (kept down until HAProxy marks it DOWN)")
    killed = time.time()
    # SIGKILL, then stop the unit so systemd does not restart it at once: a crashed app.
    lab.sh(victim, "systemctl kill --signal=SIGKILL webapp; systemctl stop webapp")
    down_after = wait_state(lab, lb, victim, "DOWN", killed)
    log(f"faults: {victim} DOWN after {down_after} s; starting the application again")
    started = time.time()
    lab.sh(victim, "systemctl start webapp")
    up_after = wait_state(lab, lb, victim, "UP", started)
    load.join(timeout=120)
    result = json.loads(lab.sh(CLIENT, "cat /root/load.json").stdout)
    out = {
        "victim": victim,
        "requests": result["requests"],
        "failed": result["failed"],
        "errors": result["errors"],
        "marked_down_after_seconds": down_after,
        "back_up_after_seconds": up_after,
    }
    log(
        f"faults: {out['failed']} failed of {out['requests']} requests; "
        f"DOWN after {down_after} s, UP after {up_after} s"
    )
    return out


def faults_lines(f: dict) -> list[str]:
    """The faults step's rows of the results table."""
    lines: list[str] = []
    lines.append(
        f"| app SIGKILLed on {f['victim']} under load | {f['failed']} failed "
        f"of {f['requests']}; DOWN after {f['marked_down_after_seconds']} s, "
        f"UP after restart {f['back_up_after_seconds']} s |"
    )
    return lines


BACKEND_KILL_FAILED_REQUESTS_MAX = 0


def faults_judge(f: dict) -> dict:
    return {"backend_kill_0_failed": f["failed"] <= BACKEND_KILL_FAILED_REQUESTS_MAX}


STEP = Step(
    "faults",
    "a web server's application SIGKILLed under load: failed requests, seconds until DOWN",
    run=lambda ctx: bench_faults(ctx.lab),
    lines=faults_lines,
    judge=faults_judge,
    needs_client=True,
)
