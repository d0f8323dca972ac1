"""What every step uses: the lab (its inventory, containers, playbook runs), the client container, a
temporary firewall opening, the machine's description, and the Step registry's types."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


CLIENT = "bench-client"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], check: bool = True, timeout: float | None = None, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise SystemExit(
            f"bench: {shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return proc


class Lab:
    def __init__(self, inventory: str):
        self.inventory = inventory
        data = json.loads(run([self.bin("ansible-inventory"), "-i", inventory, "--list"]).stdout)
        self.hostvars = data["_meta"]["hostvars"]
        self.groups = {k: v.get("hosts", []) for k, v in data.items() if isinstance(v, dict) and "hosts" in v}
        any_host = next(iter(self.hostvars.values()))
        self.name = any_host.get("webinfra_lab_name", "webinfra-lab")
        self.debian = str(any_host.get("webinfra_lab_debian", "13"))
        self.ca = Path(inventory) / ".pki" / "ca.crt"

    @staticmethod
    def bin(name: str) -> str:
        local = Path(sys.executable).parent / name
        return str(local) if local.exists() else name

    def container(self, host: str) -> str:
        return f"{self.name}-{host}"

    def sh(
        self, host: str, script: str, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        return run(["podman", "exec", self.container(host), "bash", "-c", script], check=check, timeout=timeout)

    def address(self, host: str) -> str:
        out = self.sh(host, "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1").stdout.strip()
        return out.splitlines()[0]

    def playbook(
        self, *args: str, timeline: Path | None = None, extra_env: dict | None = None
    ) -> tuple[float, int, str]:
        """(seconds, total changed, output) of an ansible-playbook run against the lab; with
        `timeline`, every task's timings go to that file (tools/callbacks/webinfra_timeline.py)."""
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", **(extra_env or {}))
        if timeline is not None:
            env["WEBINFRA_TIMELINE"] = str(timeline)
            env["ANSIBLE_CALLBACK_PLUGINS"] = str(ROOT / "tools" / "callbacks")
        started = time.time()
        proc = run([self.bin("ansible-playbook"), "-i", self.inventory, *args], check=False, env=env)
        elapsed = time.time() - started
        if proc.returncode != 0:
            raise SystemExit(
                f"bench: ansible-playbook {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
            )
        recap = proc.stdout[proc.stdout.rindex("PLAY RECAP") :]
        changed = sum(int(n) for n in re.findall(r"changed=(\d+)", recap))
        return elapsed, changed, proc.stdout


def lab_tool(*args: str) -> None:
    run([sys.executable, str(ROOT / "tools" / "lab.py"), *args])


def ensure_client(lab: Lab) -> None:
    """A client container on the lab's network with wrk, sysbench and the load generator."""
    inv = ROOT / "bench" / "results" / ".work" / "client-inventory.yml"
    inv.parent.mkdir(parents=True, exist_ok=True)
    inv.write_text(
        "---\nall:\n"
        f"  vars: {{webinfra_lab_name: {lab.name}, webinfra_lab_debian: '{lab.debian}'}}\n"
        f"  hosts:\n    {CLIENT}: {{ansible_host: {lab.container(CLIENT)}}}\n"
    )
    lab_tool("up", "-i", str(inv))
    log("client: installing wrk, sysbench and the MariaDB client")
    lab.sh(
        CLIENT,
        "command -v wrk >/dev/null && command -v sysbench >/dev/null && command -v mariadb >/dev/null || "
        "(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get "
        "install -y -qq wrk sysbench mariadb-client >/dev/null)",
        timeout=600,
    )
    run(
        ["podman", "cp", str(ROOT / "tools" / "loadgen.py"), f"{lab.container(CLIENT)}:/usr/local/bin/webinfra-loadgen"]
    )
    run(["podman", "cp", str(lab.ca), f"{lab.container(CLIENT)}:/root/ca.pem"])


class Hole:
    """Temporarily accept the bench client on one port of a host (removed on exit)."""

    def __init__(self, lab: Lab, host: str, port: int, source: str):
        self.lab, self.host, self.port, self.source = lab, host, port, source
        self.comment = f"webinfra-bench-{port}"

    def __enter__(self):
        self.lab.sh(
            self.host,
            f"nft insert rule inet webinfra input ip saddr {self.source} "
            f"tcp dport {self.port} accept comment '\"{self.comment}\"'",
        )
        return self

    def __exit__(self, *exc):
        self.lab.sh(
            self.host,
            f"for h in $(nft -a list chain inet webinfra input | grep '{self.comment}' | sed 's/.*# handle //'); do "
            "nft delete rule inet webinfra input handle $h; done",
            check=False,
        )


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 * (len(ordered) - 1))))]


def machine() -> dict:
    mem = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    podman = run(["podman", "--version"], check=False).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "podman": podman,
    }


def get_load(lab: Lab, lb: str, concurrency: int, seconds: int, tail: str) -> threading.Thread:
    """GET load through balancer `lb` from the client (tools/loadgen.py), started in a thread."""
    load = threading.Thread(
        target=lambda: lab.sh(
            CLIENT,
            f"python3 /usr/local/bin/webinfra-loadgen --url https://{lb}/ --cafile /root/ca.pem --requests 100000 "
            f"--concurrency {concurrency} --duration {seconds} {tail}",
            timeout=seconds + 80,
            check=False,
        ),
        daemon=True,
    )
    load.start()
    return load


def no_targets(_result: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Context:
    """What a step runs with: the default lab, the command line, the run's start and output folder."""

    lab: Lab
    args: argparse.Namespace
    started: str
    out: Path


@dataclass(frozen=True)
class Step:
    """One benchmark step: its name and summary, how it runs, its rows of the results table and
    its verdicts on the targets (reported, never asserted). Each step module defines STEP;
    steps.py lists them in the order they run."""

    name: str
    summary: str
    run: Callable[[Context], dict]
    lines: Callable[[dict], list[str]]
    judge: Callable[[dict], dict] = field(default=no_targets)
    # The default lab (make lab) must exist; a client container on its network is needed.
    needs_lab: bool = True
    needs_client: bool = False
