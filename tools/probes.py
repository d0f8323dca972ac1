"""Probes of a running lab, shared by the benchmarks (tools/bench) and the Molecule tests.

Each probe runs its commands inside the lab's containers through a `Shell`: `podman exec`
into `<lab name>-<host>` (a frozen or stopped host answers at once with an error, never hangs
the probe). Nothing here changes a host.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time


class Shell:
    """Runs a shell script in one of the lab's containers (`<lab>-<host>`)."""

    def __init__(self, lab: str):
        self.lab = lab

    def container(self, host: str) -> str:
        return f"{self.lab}-{host}"

    def __call__(self, host: str, script: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["podman", "exec", self.container(host), "bash", "-c", script],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )


class ReadOnlySampler:
    """@@read_only of every database host every `interval` seconds, in a thread of its own, as
    (time, {host: True (writable) | False (read-only) | None (no answer)}) samples. A sample is
    stamped before it is read: the probe's own latency can only make a change look earlier."""

    def __init__(self, shell: Shell, hosts, interval: float = 0.2):
        self.shell, self.hosts, self.interval = shell, list(hosts), interval
        self.samples: list[tuple[float, dict]] = []
        self.stop = threading.Event()

    def read(self, host: str) -> bool | None:
        try:
            proc = self.shell(host, "timeout 1 mariadb -NBe 'SELECT @@GLOBAL.read_only'", timeout=2)
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout.strip() == "0" if proc.returncode == 0 else None

    def loop(self) -> None:
        while not self.stop.is_set():
            stamp = time.time()
            self.samples.append((stamp, {h: self.read(h) for h in self.hosts}))
            time.sleep(self.interval)

    def __enter__(self):
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def double_writable(self) -> list[float]:
        """The times of the samples in which more than one server was writable."""
        return [t for t, seen in self.samples if sum(1 for v in seen.values() if v) > 1]

    def first(self, host: str, value: bool | None, since: float = 0.0) -> float | None:
        """The time of the first sample at or after `since` in which `host` read `value`."""
        return next((t for t, seen in self.samples if t >= since and seen.get(host) is value), None)


def vip_holder(shell: Shell, balancers, vip: str) -> str | None:
    """The balancer that holds the virtual IP now, or None."""
    for lb in balancers:
        proc = shell(lb, "ip -o -4 addr show")
        if proc.returncode == 0 and f"inet {vip}/32" in proc.stdout:
            return lb
    return None


def agent_status(shell: Shell, host: str, port: int = 3308) -> dict:
    """The host's HA agent /status, asked on the host itself at its private address ({} when it
    does not answer)."""
    read = (
        "import urllib.request, subprocess; a = subprocess.check_output(['hostname', '-I']).split()[0].decode(); "
        f"print(urllib.request.urlopen(f'http://{{a}}:{int(port)}/status', timeout=2).read().decode())"
    )
    try:
        proc = shell(host, f"python3 -c {shlex.quote(read)}", timeout=10)
    except subprocess.TimeoutExpired:
        return {}
    try:
        return json.loads(proc.stdout) if proc.returncode == 0 else {}
    except ValueError:
        return {}


def haproxy_servers(shell: Shell, lb: str, proxy: str) -> dict[str, str]:
    """{server: status} of one proxy (backend) on balancer `lb` ({} when it does not answer)."""
    stat = "echo 'show stat' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock"
    proc = shell(lb, stat)
    lines = proc.stdout.splitlines() if proc.returncode == 0 else []
    if not lines:
        return {}
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        row["svname"]: row["status"]
        for row in rows
        if row.get("pxname") == proxy and row.get("svname") not in ("FRONTEND", "BACKEND")
    }


def freeze(container: str, attempts: int = 5, podman: str = "podman") -> subprocess.CompletedProcess:
    """`podman pause CONTAINER`, tried again when runc's cgroup freezer gives up: on a loaded
    machine it can fail before every process has stopped ("runc pause ... exit status 1", seen
    in a clean CI run), thawing the container again, so another try is safe. Also a success when
    the container is found paused after a failed call. Returns the last call's result."""
    proc = subprocess.CompletedProcess([podman, "pause", container], 1, "", "not tried")
    for attempt in range(attempts):
        proc = subprocess.run([podman, "pause", container], capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode == 0:
            return proc
        state = subprocess.run(
            [podman, "inspect", "--format", "{{.State.Status}}", container],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if state.stdout.strip() == "paused":
            return subprocess.CompletedProcess(proc.args, 0, proc.stdout, proc.stderr)
        time.sleep(0.2 * (attempt + 1))
    return proc
