"""webinfra benchmarks on the local lab: deploy speed, data path, fault windows, replication.

Run after `make lab` (it uses the lab's inventory, hosts and internal CA):

    make bench            # or: .venv/bin/python tools/bench.py [--only deploy,mitogen,...]

Steps (each prints its progress and its figures):
  deploy       re-creates the lab hosts (images present), times site.yml on the fresh hosts, a
               no-op re-run and a --check run, with the changed count of each, next to two
               floors: one trivial module run on every host (ping), and one apt transaction per
               host of the packages the fresh deploy installed, all hosts at once (on hosts
               re-created for it); then a second fresh deploy; the ratios to the floors
  datapath     wrk from a client container: requests/s and latency p50/p99 through HAProxy and
               direct to one web server, for a static page and an application page
  faults       bounded load through the balancer while one web server's application is killed
               (SIGKILL): failed requests, and the seconds until HAProxy marks it DOWN
  ha           a second lab with two balancers sharing a virtual IP and separate primary and
               replica hosts (inventories/lab-ha), created and deployed for the step and removed
               after it: seconds without service when the VRRP master's container is stopped
               under load, and the write window and lost acknowledged writes of a switchover
               under write load (through the writer endpoint), then automatic database failover
               (HA agents, leader lease in etcd): the leader frozen (podman pause) under write load,
               --failover-trials times, with read_only sampled on every database host every 200 ms:
               write window (median, worst), lost acknowledged writes, samples with two writable
  replication  sysbench oltp_write_only on the primary (60 s, 4 threads) while the replica's lag
               is sampled every second by the webinfra.distributed.replication_info module itself
               (its payload, kept on the replica after one ad hoc run, executed there each second);
               then the table checksums of primary and replica are compared
  console      the stack's overview page (Prometheus' console template, published by the lab on
               127.0.0.1:9090) opened in headless Chromium (Debian's package, installed when
               missing): a screenshot next to the results and what the rendered page shows

  backup       a sysbench database of about --backup-gib GiB on the primary; a full backup (from the
               replica to the backup host): MB/s; the archive's lag behind the primary's binary
               log while sysbench writes (RPO); a restore of that backup onto the backup host
               (playbooks/restore.yml, a scratch restore) and its table checksums; a rebuild of
               the replica streamed from the primary (playbooks/rebuild.yml) with the primary's
               disk growth; a restore drill on the backup host
  mitogen      site.yml with Ansible's linear strategy and with Mitogen's (requirements-bench.txt),
               alternately: two no-op re-runs each, then one fresh deploy each on re-created hosts
  scaling      labs of 2, 4 and 6 web servers with 1 replica, and 4 with 2 (each web server
               hosting a database, as in the lab), created for the step and removed after it:
               site.yml fresh and no-op, each next to the module floor of that lab

Results: bench/results/<UTC time>.json and .md, and bench/results/latest.{json,md}; the charts
(tools/charts.py, run by `make bench`) and the console screenshot as bench/results/<time>-*.png.
Targets are reported, never asserted. Load goes only to the lab's own containers; every load is
bounded in time. The direct measurements need the client to reach a web server (3306 and the
backend port are firewalled): the tool opens a rule for the client's address only, in the
host's own nftables table, and removes it afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("deploy", "mitogen", "datapath", "faults", "replication", "console", "backup", "ha", "scaling")
# The scaling step's lab shapes: (web servers, database replicas among them). Each web server
# hosts a database, as in the lab (web-01 the primary, the next ones replicas).
SCALING_SHAPES = ((2, 1), (4, 1), (6, 1), (4, 2))
SCALING_LAB = "webinfra-scale"
CLIENT = "bench-client"
TARGETS = {
    "noop_rerun_seconds_max": 60,
    "balancer_vs_direct_app_rps_min": 0.9,
    "backend_kill_failed_requests_max": 0,
    "replication_lag_p99_seconds_max": 1,
    "lb_failover_seconds_max": 3,
    "switchover_write_window_seconds_max": 5,
    "auto_failover_write_window_seconds_max": 30,
}


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


# --- deploy ------------------------------------------------------------------------------------
APT_HISTORY = "/var/log/apt/history.log"


def requested_packages(history: str) -> list[str]:
    """The packages apt installed on request (not as dependencies), from history.log's text."""
    names = set()
    for line in history.splitlines():
        if line.startswith("Install: "):
            for name, detail in re.findall(r"(\S+) \(([^)]*)\)", line[len("Install: ") :]):
                if "automatic" not in detail:
                    names.add(name.split(":", 1)[0])
    return sorted(names)


def recreate(lab: Lab) -> None:
    log("deploy: re-creating the lab hosts (images present)")
    lab_tool("down", "--lab", lab.name)
    lab_tool("up", "-i", lab.inventory)


def history_size(lab: Lab, host: str) -> int:
    return int(lab.sh(host, f"stat -c %s {APT_HISTORY} 2>/dev/null || echo 0").stdout.split()[0])


def apt_floor(lab: Lab, packages: dict[str, list[str]]) -> float:
    """Wall seconds of one apt transaction per host (the index update, then every package the
    deploy installed there), all hosts at once: the floor of a fresh deploy."""
    script = (
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq"
        " && apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold {} > /dev/null"
    )
    started = time.time()
    workers = [
        threading.Thread(target=lab.sh, args=(host, script.format(" ".join(names))), kwargs={"timeout": 1800})
        for host, names in packages.items()
        if names
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.time() - started


def module_floor(lab: Lab) -> float:
    """Wall seconds of one trivial module run (ping) on every host, as site.yml reaches them:
    the floor of a re-run (Ansible's start-up, connections, one module run per host)."""
    started = time.time()
    run([lab.bin("ansible"), "-i", lab.inventory, "all", "-m", "ansible.builtin.ping"], cwd=ROOT)
    return time.time() - started


def task_category(task: dict) -> str:
    """Where a task's time counts: packages, handlers (restarts, reloads), waits, facts and
    includes, or other module runs."""
    action = task["action"].rsplit(".", 1)[-1]
    if task["handler"]:
        return "handlers"
    if action in ("apt", "package", "apt_repository"):
        return "packages"
    if action in ("gather_facts", "setup", "include_role", "include_tasks", "import_role", "group_by", "meta"):
        return "facts and includes"
    if action in ("wait_for", "pause") or task["name"].lower().startswith("wait"):
        return "waits"
    return "other module runs"


def where_time_goes(timeline: dict, top: int = 15) -> dict:
    """Seconds of a playbook run per play, per kind of task and for the longest tasks. Plays and
    tasks run one after the other (linear strategy): a task lasts until the next one starts."""
    tasks, plays = timeline["tasks"], timeline["plays"]
    end = timeline["seconds"]
    walls = []
    for i, task in enumerate(tasks):
        stop = tasks[i + 1]["start"] if i + 1 < len(tasks) else end
        walls.append(max(0.0, stop - task["start"]))
    play_seconds = []
    for i, play in enumerate(plays):
        stop = plays[i + 1]["start"] if i + 1 < len(plays) else end
        play_seconds.append({"name": play["name"], "seconds": round(stop - play["start"], 1)})
    categories: dict[str, float] = {}
    for task, wall in zip(tasks, walls, strict=True):
        key = task_category(task)
        categories[key] = categories.get(key, 0.0) + wall
    longest = sorted(zip(walls, tasks, strict=True), key=lambda pair: -pair[0])[:top]
    return {
        "seconds": round(end, 1),
        "plays": play_seconds,
        "categories": {k: round(v, 1) for k, v in sorted(categories.items(), key=lambda kv: -kv[1])},
        "longest_tasks": [
            {"name": t["name"], "seconds": round(w, 1), "hosts": sorted(t["hosts"]), "category": task_category(t)}
            for w, t in longest
        ],
    }


def bench_deploy(lab: Lab) -> dict:
    """site.yml fresh, re-run and --check, next to their floors measured in the same run: one
    apt transaction per host of the packages the fresh deploy installed (on hosts re-created
    for it) and one trivial module run on every host; then a second fresh deploy (which leaves
    the lab deployed for the other steps)."""
    recreate(lab)
    hosts = sorted(lab.hostvars)
    sizes = {host: history_size(lab, host) for host in hosts}
    site = str(ROOT / "site.yml")
    out: dict = {}
    work = ROOT / "bench" / "results" / ".work"
    work.mkdir(parents=True, exist_ok=True)
    for key, args in (("fresh", [site]), ("noop_rerun", [site]), ("check", [site, "--check"])):
        log(f"deploy: site.yml {key.replace('_', ' ')} ...")
        timeline = work / f"timeline-{key}.json"
        seconds, changed, _output = lab.playbook(*args, timeline=timeline)
        out[key] = {"seconds": round(seconds, 1), "changed": changed}
        if key != "check":
            out[key]["breakdown"] = where_time_goes(json.loads(timeline.read_text()))
        log(f"deploy: {key}: {seconds:.1f} s, changed={changed}")
        if "breakdown" in out[key]:
            log(f"deploy: {key}: by kind {out[key]['breakdown']['categories']}")
    floor = module_floor(lab)
    out["module_floor"] = {"seconds": round(floor, 1)}
    log(f"deploy: floor of a re-run (ansible all -m ping): {floor:.1f} s")
    packages = {
        host: requested_packages(lab.sh(host, f"tail -c +{sizes[host] + 1} {APT_HISTORY}").stdout) for host in hosts
    }
    if not any(packages.values()):
        raise SystemExit(f"bench: no package installs found in {APT_HISTORY} after the fresh deploy")
    recreate(lab)
    floor = apt_floor(lab, packages)
    out["apt_floor"] = {"seconds": round(floor, 1), "packages": {h: len(p) for h, p in packages.items()}}
    log(f"deploy: floor of a fresh deploy (one apt transaction per host, all at once): {floor:.1f} s; {packages}")
    recreate(lab)
    log("deploy: site.yml fresh (second sample; leaves the lab deployed) ...")
    seconds, changed, _output = lab.playbook(site)
    out["fresh_again"] = {"seconds": round(seconds, 1), "changed": changed}
    log(f"deploy: fresh again: {seconds:.1f} s, changed={changed}")
    fresh = min(out["fresh"]["seconds"], out["fresh_again"]["seconds"])
    out["ratios"] = {
        "fresh_to_apt_floor": round(fresh / out["apt_floor"]["seconds"], 2),
        "noop_to_module_floor": round(out["noop_rerun"]["seconds"] / out["module_floor"]["seconds"], 2),
    }
    log(f"deploy: ratios {out['ratios']}")
    return out


# --- Mitogen ----------------------------------------------------------------------------------
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


# --- scaling ----------------------------------------------------------------------------------
def scale_inventory(webs: int, replicas: int, lab_vars: str) -> dict[str, str]:
    """Files of an inventory like the lab's with `webs` web servers, each hosting a database:
    web-01 the primary, the next `replicas` ones replicas (the others read from the primary);
    etcd on lb-01 and the first two web servers, backups and monitoring on lb-01, nothing
    published (the lab may run beside it). `lab_vars` is the lab's group_vars/all.yml."""
    if webs < 2 or not 1 <= replicas < webs:
        raise ValueError(f"a shape needs 2 or more web servers and 1 to {webs - 1} replicas, not {webs}/{replicas}")
    web_names = [f"web-{i:02d}" for i in range(1, webs + 1)]

    def members(names: list[str]) -> dict:
        return {"hosts": {n: None for n in names}}

    hosts = {
        "all": {
            "children": {
                "loadbalancers": {"hosts": {"lb-01": {"ansible_host": f"{SCALING_LAB}-lb-01"}}},
                "webservers": {"hosts": {n: {"ansible_host": f"{SCALING_LAB}-{n}"} for n in web_names}},
                "db_primary": members(web_names[:1]),
                "db_replicas": members(web_names[1 : 1 + replicas]),
                "etcd": members(["lb-01", *web_names[:2]]),
                "backups": members(["lb-01"]),
                "monitoring": members(["lb-01"]),
            }
        }
    }
    overrides = {"webinfra_lab_name": SCALING_LAB, "haproxy_https_redirect_port": 443}
    return {
        "hosts.yml": "---\n" + json.dumps(hosts, indent=2) + "\n",
        "group_vars/all/00-lab.yml": lab_vars,
        "group_vars/all/10-scale.yml": "---\n" + json.dumps(overrides, indent=2) + "\n",
    }


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    """--scaling-shapes: comma-separated WEBSxREPLICAS (for example 2x1,4x2)."""
    shapes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\d+)x(\d+)", item)
        if not match or int(match.group(2)) < 1 or int(match.group(2)) >= int(match.group(1)):
            raise SystemExit(
                f"bench: --scaling-shapes: '{item}' is not WEBSxREPLICAS with 1 <= REPLICAS < WEBS (for example 4x2)"
            )
        shapes.append((int(match.group(1)), int(match.group(2))))
    return tuple(shapes)


def bench_scaling(shapes=SCALING_SHAPES) -> dict:
    """site.yml fresh and no-op on labs of growing size, each next to its module floor (one
    trivial module run on every host): does a host more cost time, or run beside the others?"""
    lab_vars = (ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text()
    work = ROOT / "bench" / "results" / ".work"
    rows = []
    for webs, replicas in shapes:
        inventory = work / f"scale-{webs}w{replicas}r"
        shutil.rmtree(inventory, ignore_errors=True)
        for name, text in scale_inventory(webs, replicas, lab_vars).items():
            (inventory / name).parent.mkdir(parents=True, exist_ok=True)
            (inventory / name).write_text(text)
        lab = Lab(str(inventory))
        log(f"scaling: {webs} web servers, {replicas} replica(s): {len(lab.hostvars)} hosts")
        lab_tool("down", "--lab", SCALING_LAB)
        lab_tool("up", "-i", str(inventory))
        try:
            fresh, fresh_changed, _output = lab.playbook(str(ROOT / "site.yml"))
            noop, noop_changed, _output = lab.playbook(str(ROOT / "site.yml"))
            floor = module_floor(lab)
        finally:
            lab_tool("down", "--lab", SCALING_LAB)
        row = {
            "webs": webs,
            "replicas": replicas,
            "hosts": len(lab.hostvars),
            "fresh_seconds": round(fresh, 1),
            "fresh_changed": fresh_changed,
            "noop_seconds": round(noop, 1),
            "noop_changed": noop_changed,
            "module_floor_seconds": round(floor, 1),
        }
        log(f"scaling: {row}")
        rows.append(row)
    return {"shapes": rows}


def scaling_lines(d: dict) -> list[str]:
    """The scaling step's rows of the results table."""
    return [
        f"| site.yml, {r['webs']} web servers, {r['replicas']} replica(s) ({r['hosts']} hosts) | "
        f"fresh {r['fresh_seconds']} s (changed={r['fresh_changed']}), no-op {r['noop_seconds']} s "
        f"(changed={r['noop_changed']}), module floor {r['module_floor_seconds']} s |"
        for r in d["shapes"]
    ]


# --- data path ---------------------------------------------------------------------------------
WRK_RE = {
    "rps": re.compile(r"Requests/sec:\s+([\d.]+)"),
    **{f"p{pct}": re.compile(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", re.M) for pct in (50, 75, 90, 99)},
    "errors": re.compile(r"Non-2xx or 3xx responses:\s+(\d+)"),
    "socket_errors": re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"),
}


def parse_wrk(text: str) -> dict:
    def ms(match):
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    rps = WRK_RE["rps"].search(text)
    non2xx = WRK_RE["errors"].search(text)
    sock = WRK_RE["socket_errors"].search(text)
    out: dict = {"rps": float(rps.group(1)) if rps else None}
    for pct in (50, 75, 90, 99):
        found = WRK_RE[f"p{pct}"].search(text)
        out[f"p{pct}_ms"] = ms(found) if found else None
    out.update(
        {
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        }
    )
    return out


# Process names grouped into the components of the data path (every lab host is a container on
# this machine, so their processes are visible in its /proc).
COMPONENTS = {
    "haproxy": "haproxy",
    "nginx": "nginx",
    "python": "gunicorn",
    "gunicorn": "gunicorn",
    "systemd-journal": "journald",
}


def cpu_ticks() -> dict[str, int]:
    """CPU time (clock ticks) used so far by every process, keyed by pid:name."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[f"{pid}:{name}"] = int(fields[11]) + int(fields[12])
    return out


def cpu_per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request, by data path component (the rest summed as other).

    Processes that ended during the run (the load generator itself) are not counted.
    """
    hz = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for key, ticks in after.items():
        delta = ticks - before.get(key, 0)
        if delta > 0:
            group = COMPONENTS.get(key.split(":", 1)[1], "other")
            used[group] = used.get(group, 0) + delta
    return {k: round(v * 1000 / hz / max(requests, 1), 3) for k, v in sorted(used.items(), key=lambda kv: -kv[1])}


def wrk(lab: Lab, url: str, seconds: int, connections: int) -> dict:
    before = cpu_ticks()
    proc = lab.sh(CLIENT, f"wrk -t2 -c{connections} -d{seconds}s --latency {shlex.quote(url)}", timeout=seconds + 60)
    after = cpu_ticks()
    result = parse_wrk(proc.stdout)
    result["url"] = url
    if result["rps"]:
        result["cpu_ms_per_request"] = cpu_per_request(before, after, int(result["rps"] * seconds))
    return result


def runtime_api(lab: Lab, lb: str, command: str) -> None:
    lab.sh(lb, f"echo {shlex.quote(command)} | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock")


def bench_datapath(lab: Lab, seconds: int, connections: int) -> dict:
    lb = lab.groups["loadbalancers"][0]
    web = lab.groups["webservers"][0]
    others = [w for w in lab.groups["webservers"] if w != web]
    port = int(
        lab.hostvars[web].get(
            "webinfra_backend_port", 443 if lab.hostvars[web].get("webinfra_backend_tls", True) else 80
        )
    )
    scheme = "https" if port == 443 else "http"
    pages = {"static": "/static/index.html", "app": "/"}
    out = {"connections": connections, "seconds": seconds, "balancer": lb, "direct": web}
    with Hole(lab, web, port, lab.address(CLIENT)):
        for page, path in pages.items():
            for where, url in (("balancer", f"https://{lb}{path}"), ("direct", f"{scheme}://{web}:{port}{path}")):
                log(f"datapath: wrk {seconds} s, {connections} connections, {page} page via {where} ...")
                res = wrk(lab, url, seconds, connections)
                out[f"{page}_{where}"] = res
                log(f"datapath: {page} via {where}: {res['rps']} req/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms")
            ratio = (
                out[f"{page}_balancer"]["rps"] / out[f"{page}_direct"]["rps"] if out[f"{page}_direct"]["rps"] else None
            )
            out[f"{page}_ratio"] = round(ratio, 3) if ratio else None
        # The same comparison with the balancer over that one web server only (the others put in
        # maintenance through the runtime API): every host shares this machine's CPUs, so through
        # the balancer the load also spreads over the other web servers' processes; this figure
        # isolates what the balancer itself costs.
        log(f"datapath: wrk {seconds} s, app page via balancer over {web} only ...")
        for other in others:
            runtime_api(lab, lb, f"disable server webservers/{other}")
        try:
            res = wrk(lab, f"https://{lb}/", seconds, connections)
        finally:
            for other in others:
                runtime_api(lab, lb, f"enable server webservers/{other}")
        out["app_balancer_one_backend"] = res
        out["app_ratio_one_backend"] = round(res["rps"] / out["app_direct"]["rps"], 3) if res["rps"] else None
        log(f"datapath: app via balancer over {web} only: {res['rps']} req/s (ratio {out['app_ratio_one_backend']})")
    return out


# --- faults ------------------------------------------------------------------------------------
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


# --- high availability -------------------------------------------------------------------------
def writeload(lab: Lab, name: str, method: str, url_path: str, vip: str) -> None:
    """Start tools/writeload.py on the client against the virtual IP (stopped by stop_writeload)."""
    lab.sh(CLIENT, f"rm -f /root/{name}.json /root/{name}.ready /root/{name}.stop /root/{name}.events")
    lab.sh(
        CLIENT,
        f"nohup python3 /usr/local/bin/webinfra-writeload --url https://{vip}{url_path} --method {method} "
        f"--prefix {name} --cafile /root/ca.pem --stop-file /root/{name}.stop --ready-file /root/{name}.ready "
        f"--events-file /root/{name}.events --duration 300 > /root/{name}.json 2>/root/{name}.err &",
    )
    deadline = time.time() + 30
    while lab.sh(CLIENT, f"test -e /root/{name}.ready", check=False).returncode != 0:
        if time.time() > deadline:
            raise SystemExit(f"bench: the {name} load did not start: {lab.sh(CLIENT, f'cat /root/{name}.err').stdout}")
        time.sleep(0.5)


def stop_writeload(lab: Lab, name: str) -> dict:
    lab.sh(CLIENT, f"touch /root/{name}.stop")
    deadline = time.time() + 30
    while lab.sh(CLIENT, f"test -s /root/{name}.json", check=False).returncode != 0:
        if time.time() > deadline:
            raise SystemExit(f"bench: the {name} load did not finish")
        time.sleep(0.5)
    result = json.loads(lab.sh(CLIENT, f"cat /root/{name}.json").stdout)
    events = lab.sh(CLIENT, f"cat /root/{name}.events", check=False).stdout
    result["events"] = [json.loads(line) for line in events.splitlines() if line.strip()]
    return result


def timeline(events: list[dict], origin: float, marks: dict[str, float | None]) -> dict:
    """Every request of a load as [start, duration, ok] in seconds from `origin` (the fault), with
    the moments worth marking on a chart: what tools/charts.py draws."""
    return {
        "requests": [
            [round(e["start"] - origin, 3), round(e["end"] - e["start"], 3), 1 if e["ok"] else 0]
            for e in sorted(events, key=lambda e: e["start"])
        ],
        "marks": {name: round(at, 2) for name, at in marks.items() if at is not None},
    }


def holder(lab: Lab, vip: str) -> str | None:
    for lb in lab.groups["loadbalancers"]:
        proc = lab.sh(lb, "ip -o -4 addr show", check=False)
        if proc.returncode == 0 and f"inet {vip}/32" in proc.stdout:
            return lb
    return None


class ReadOnlySampler:
    """@@read_only of every database host every 200 ms (podman exec fails at once on a frozen host)."""

    def __init__(self, lab: Lab, hosts: list[str]):
        self.lab, self.hosts, self.samples, self.stop = lab, hosts, [], threading.Event()

    def read(self, host: str) -> bool | None:
        try:
            proc = self.lab.sh(host, "timeout 1 mariadb -NBe 'SELECT @@GLOBAL.read_only'", check=False, timeout=2)
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout.strip() == "0" if proc.returncode == 0 else None

    def loop(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), {h: self.read(h) for h in self.hosts}))
            time.sleep(0.2)

    def __enter__(self):
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def double_writable(self) -> int:
        return sum(1 for _t, seen in self.samples if sum(1 for v in seen.values() if v) > 1)

    def first_writable(self, host: str, since: float) -> float | None:
        return next((t - since for t, seen in self.samples if t >= since and seen.get(host)), None)


def writer_states(lab: Lab, lb: str | None) -> dict[str, str]:
    """{server: HAProxy status} of the writer endpoint's servers on balancer `lb`."""
    if lb is None:
        return {}
    stat = "echo 'show stat' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock"
    proc = lab.sh(lb, stat, check=False)
    name = lab.hostvars[lb].get("haproxy_db_writer_name", "db_writer")
    return {
        fields[1]: fields[17]
        for fields in (line.split(",") for line in proc.stdout.splitlines())
        if len(fields) > 17 and fields[0] == name and fields[1] not in ("FRONTEND", "BACKEND")
    }


def agent_status(lab: Lab, host: str) -> dict:
    """The host's HA agent /status ({} when it does not answer)."""
    read = (
        "import urllib.request, subprocess; a = subprocess.check_output(['hostname', '-I']).split()[0].decode(); "
        "print(urllib.request.urlopen(f'http://{a}:3308/status', timeout=2).read().decode())"
    )
    proc = lab.sh(host, f"python3 -c {shlex.quote(read)}", check=False, timeout=10)
    try:
        return json.loads(proc.stdout) if proc.returncode == 0 else {}
    except ValueError:
        return {}


def agent_leader(lab: Lab, host: str) -> str | None:
    return agent_status(lab, host).get("leader") or None


def wait_synchronous(lab: Lab, leader: str, others: list[str], timeout: float = 60) -> bool:
    """A leader that runs asynchronously is never replaced automatically, nor by a replica whose
    lag is unknown (just reconnected): wait until the leader runs semi-synchronously and every
    other agent measured no lag."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if agent_status(lab, leader).get("db", {}).get("semisync") and all(
            agent_status(lab, other).get("lag") == 0 for other in others
        ):
            return True
        time.sleep(1)
    return False


def bench_auto_failover(lab: Lab, vip: str, trials: int) -> dict:
    """Freeze the leader under write load, `trials` times; the HA agents promote a replica."""
    dbs = list(dict.fromkeys(lab.groups["db_primary"] + lab.groups["db_replicas"]))
    window = int(lab.hostvars[dbs[0]].get("mysql_replication_ha_failover_window", 300))
    runs = []
    for trial in range(1, trials + 1):
        leader = next((x for x in (agent_leader(lab, h) for h in dbs) if x), None)
        if leader is None:
            raise SystemExit("bench: no database leader before the automatic failover trial")
        name = f"auto{trial}"
        if not wait_synchronous(lab, leader, [h for h in dbs if h != leader]):
            raise SystemExit(f"bench: the leader {leader} did not run semi-synchronously within 60 s")
        log(f"ha: automatic failover {trial}/{trials}: write load, freezing the leader {leader}")
        writeload(lab, name, "POST", "/api/notes", vip)
        with ReadOnlySampler(lab, dbs) as sampler:
            time.sleep(3)
            frozen = time.time()
            run(["podman", "pause", lab.container(leader)])
            deadline = time.time() + 90
            new = None
            while time.time() < deadline and new is None:
                time.sleep(0.5)
                new = next((h for h in dbs if h != leader and sampler.first_writable(h, frozen) is not None), None)
            time.sleep(5)
            res = stop_writeload(lab, name)
            # What the writer endpoint's balancer thought at the end of the load (the VIP holder).
            endpoint = writer_states(lab, holder(lab, vip))
            run(["podman", "unpause", lab.container(leader)])
            time.sleep(5)
        if new is None:
            raise SystemExit(f"bench: no replica took over within 90 s of freezing {leader}")
        stored = set(
            lab.sh(new, f"mariadb -N -B -e \"SELECT body FROM webapp.notes WHERE body LIKE '{name}-%'\"").stdout.split()  # noqa: S608
        )
        lost = [body for body in res["acked"] if body not in stored]
        one = {
            "frozen": leader,
            "promoted": new,
            "promoted_after_seconds": round(sampler.first_writable(new, frozen), 1),
            "write_window_seconds": res["max_gap_s"],
            "failed_writes": res["failed"],
            "errors": res["errors"],
            "writer_endpoint_at_end": endpoint,
            "acknowledged_writes": len(res["acked"]),
            "lost_acknowledged_writes": len(lost),
            "double_writable_samples": sampler.double_writable(),
            "samples": len(sampler.samples),
            "timeline": timeline(
                res["events"],
                frozen,
                {"leader frozen": 0.0, "new leader writable": sampler.first_writable(new, frozen)},
            ),
        }
        runs.append(one)
        log(
            f"ha: automatic failover {trial}: {one['write_window_seconds']} s without an acknowledged write, "
            f"{one['promoted']} writable after {one['promoted_after_seconds']} s, {one['lost_acknowledged_writes']} "
            f"lost of {one['acknowledged_writes']}, {one['double_writable_samples']} samples with two writable"
        )
        if trial < trials:
            log(f"ha: waiting out the anti-flapping window ({window} s) before the next trial")
            time.sleep(window + 2)
    windows = sorted(r["write_window_seconds"] or 0 for r in runs)
    return {
        "trials": runs,
        "write_window_median_seconds": windows[len(windows) // 2],
        "write_window_worst_seconds": windows[-1],
        "lost_acknowledged_writes": sum(r["lost_acknowledged_writes"] for r in runs),
        "double_writable_samples": sum(r["double_writable_samples"] for r in runs),
    }


def bench_ha(inventory: str, trials: int = 5) -> dict:  # noqa: PLR0915 - one sequence of measurements
    """Balancer failover and switchover windows on a second lab (inventories/lab-ha), which is
    created, deployed, measured and removed."""
    lab = Lab(inventory)
    log(f"ha: creating the high-availability lab {lab.name} ({len(lab.hostvars)} hosts) and deploying site.yml")
    lab_tool("up", "-i", inventory)
    try:
        seconds, changed, _output = lab.playbook(str(ROOT / "site.yml"))
        log(f"ha: deployed in {seconds:.1f} s (changed={changed})")
        ensure_client(lab)
        run(
            [
                "podman",
                "cp",
                str(ROOT / "tools" / "writeload.py"),
                f"{lab.container(CLIENT)}:/usr/local/bin/webinfra-writeload",
            ]
        )
        conf = lab.sh(lab.groups["loadbalancers"][-1], "cat /etc/keepalived/keepalived.conf").stdout
        vip = conf.split("virtual_ipaddress {", 1)[1].split()[0].split("/")[0]
        master = holder(lab, vip)
        out: dict = {"hosts": len(lab.hostvars), "deploy_seconds": round(seconds, 1), "vip": vip}

        log(f"ha: GET load on {vip}; stopping {master}'s container (the VRRP master)")
        writeload(lab, "lbfail", "GET", "/", vip)
        time.sleep(3)
        stopped = time.time()
        run(["podman", "stop", "-t", "0", lab.container(master)])
        time.sleep(8)
        res = stop_writeload(lab, "lbfail")
        out["lb_failover"] = {
            "stopped": master,
            "new_holder": holder(lab, vip),
            "max_gap_seconds": res["max_gap_s"],
            "failed": res["failed"],
            "requests": res["requests"],
            "timeline": timeline(res["events"], stopped, {"VRRP master stopped": 0.0}),
        }
        log(f"ha: balancer failover: {res['max_gap_s']} s without service, {res['failed']} failed of {res['requests']}")

        primary = lab.groups["db_primary"][0]
        replica = lab.groups["db_replicas"][0]
        log(f"ha: write load through the writer endpoint; switchover {primary} -> {replica}")
        writeload(lab, "switch", "POST", "/api/notes", vip)
        time.sleep(3)
        started = time.time()
        lab.playbook(str(ROOT / "playbooks" / "switchover.yml"), "-e", f"new_primary={replica}")
        playbook_seconds = time.time() - started
        time.sleep(4)
        res = stop_writeload(lab, "switch")
        stored = set(
            lab.sh(
                replica, "mariadb -N -B -e \"SELECT body FROM webapp.notes WHERE body LIKE 'switch-%'\""
            ).stdout.split()
        )
        lost = [body for body in res["acked"] if body not in stored]
        out["switchover"] = {
            "playbook_seconds": round(playbook_seconds, 1),
            "write_window_seconds": res["max_gap_s"],
            "failed_writes": res["failed"],
            "acknowledged_writes": len(res["acked"]),
            "lost_acknowledged_writes": len(lost),
            "timeline": timeline(res["events"], started, {"playbook started": 0.0, "playbook ended": playbook_seconds}),
        }
        log(
            f"ha: switchover: {res['max_gap_s']} s without an acknowledged write, "
            f"{len(lost)} of {len(res['acked'])} acknowledged writes lost (playbook {playbook_seconds:.1f} s)"
        )
        out["auto_failover"] = bench_auto_failover(lab, vip, trials)
        return out
    finally:
        log(f"ha: removing {lab.name}")
        lab_tool("down", "--lab", lab.name)


# --- console -----------------------------------------------------------------------------------
BROWSER_FLAGS = (
    # Chromium as root in a machine with no display and no Internet (Debian's package).
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def ensure_browser() -> str:
    """Debian's Chromium, installed with the lab tool's apt helper (host set-up lock) when missing."""
    sys.path.insert(0, str(ROOT / "tools"))
    import lab as labtool  # noqa: PLC0415 - the lab tool's apt helper

    labtool.apt_install(lambda: [] if shutil.which("chromium") else ["chromium"], "chromium")
    return shutil.which("chromium") or "chromium"


def page_rows(html: str, section: str) -> list[list[str]]:
    """The cells of each row of one section's table of the overview page (as rendered)."""
    if f'<h2 id="{section}">' not in html:
        return []
    part = html.split(f'<h2 id="{section}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", part, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows][
        1:
    ]


def bench_console(lab: Lab, url: str, png: Path) -> dict:
    """Open the overview page in headless Chromium: its DOM (what it shows) and a screenshot,
    taken while a light GET load runs through the balancer (so the rates have something to show)."""
    browser = ensure_browser()
    version = run([browser, "--version"]).stdout.strip()
    lb = lab.groups["loadbalancers"][0]
    load = get_load(lab, lb, 2, 45, "> /dev/null")
    time.sleep(30)  # two scrapes and more inside the page's rate window
    # Prometheus answers over HTTPS to its login only: the login goes into the address the
    # browser opens, and the lab's internal CA is not in Chromium's store.
    monitor = lab.hostvars[lab.groups["monitoring"][0]]
    user, password = monitor.get("monitoring_web_user", "admin"), monitor["monitoring_web_password"]
    opened = url.replace("://", f"://{quote(user, safe='')}:{quote(password, safe='')}@", 1)
    flags = [*BROWSER_FLAGS, "--ignore-certificate-errors"]
    with tempfile.TemporaryDirectory() as profile:
        dom = run([browser, *flags, f"--user-data-dir={profile}", "--dump-dom", opened], timeout=120).stdout
    with tempfile.TemporaryDirectory() as profile:
        run(
            [browser, *flags, f"--user-data-dir={profile}", "--window-size=1280,1000", f"--screenshot={png}", opened],
            timeout=120,
        )
    load.join(timeout=120)
    out = {
        "url": url,
        "browser": version,
        "screenshot": png.name if png.exists() else None,
        "balancers": {row[0]: row[1:] for row in page_rows(dom, "balancers") if len(row) == 5},
        "backends": {f"{row[0]}/{row[1]}": row[2] for row in page_rows(dom, "backends") if len(row) == 5},
        "databases": {row[0]: row[1:] for row in page_rows(dom, "databases") if len(row) == 6},
        "alerts_firing": [row[0] for row in page_rows(dom, "alerts") if len(row) == 3],
        "backups": page_rows(dom, "backups"),
    }
    log(
        f"console: {version}: {len(out['balancers'])} balancer(s), backends {out['backends']}, "
        f"databases {{{', '.join(f'{k}: {v[1]}' for k, v in out['databases'].items())}}}, "
        f"alerts firing {out['alerts_firing'] or 'none'}; screenshot {png}"
    )
    return out


# --- replication -------------------------------------------------------------------------------
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


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 * (len(ordered) - 1))))]


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


BACKUP_AGENT = "/usr/local/sbin/webinfra-backup"


def archive_lag(lab: Lab, primary: str, backup_host: str, seconds: int) -> list[float]:
    """Every second: the primary's binary-log position, then how long until the archive's copy of
    that file holds it (polled every 50 ms on the backup host)."""
    server_id = lab.sh(primary, "mariadb -N -B -e 'SELECT @@server_id'").stdout.strip()
    lags: list[float] = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = lab.sh(primary, "mariadb -N -B -e 'SHOW MASTER STATUS'").stdout.split()
        seen = time.time()
        path = f"/var/backups/webinfra/binlog/{server_id}/{status[0]}"
        waited = lab.sh(
            backup_host,
            f"python3 -c {shlex.quote(WAIT_SIZE)} {path} {status[1]} 30",
            check=False,
            timeout=60,
        )
        if waited.returncode == 0:
            lags.append(round(time.time() - seen - float(waited.stdout.strip() or 0), 3))
        time.sleep(max(0.0, 1 - (time.time() - seen)))
    return lags


# Prints how long it polled before the file reached the size (the rest of the lag is the exec's).
WAIT_SIZE = """
import os, sys, time
path, size, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
started = time.time()
while time.time() - started < limit:
    if os.path.exists(path) and os.path.getsize(path) >= size:
        break
    time.sleep(0.05)
else:
    sys.exit(1)
print(0)
"""


DISK = "du -sxb /var /tmp /root 2>/dev/null | awk '{s+=$1} END {print s}'"


def bench_rebuild(lab: Lab, primary: str, replica: str) -> dict:
    """rebuild.yml of the replica by a stream from the primary: its time, and how much the
    primary's disk grew at most meanwhile (sampled every second)."""
    log(f"backup: rebuild of {replica} streamed from the primary (rebuild.yml) ...")
    baseline = int(lab.sh(primary, DISK).stdout.strip() or 0)
    peak, done = [baseline], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(int(lab.sh(primary, DISK, check=False).stdout.strip() or 0))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        elapsed, _changed, _text = lab.playbook(
            str(ROOT / "playbooks" / "rebuild.yml"), "-e", json.dumps({"host": replica, "rebuild_source": "primary"})
        )
    finally:
        done.set()
        sampler.join()
    result = json.loads(lab.sh(replica, "cat /var/lib/webinfra-rebuild.json").stdout)
    lab.sh(replica, "rm -rf /var/lib/mysql.before-rebuild-*")
    return {
        "seconds": round(elapsed, 1),
        "agent_seconds": result["duration"],
        "primary_disk_growth_bytes": max(peak) - baseline,
    }


def bench_backup(lab: Lab, gib: float, seconds: int, threads: int) -> dict:  # noqa: PLR0915 - one sequence
    primary = lab.groups["db_primary"][0]
    replica = lab.groups["db_replicas"][0]
    backup_host = (lab.groups.get("backups") or [None])[0]
    if backup_host is None:
        raise SystemExit("bench: the lab inventory has no backups group (make lab deploys one)")
    client_addr = lab.address(CLIENT)
    primary_addr = lab.address(primary)
    password = "bench-" + os.urandom(8).hex()
    sql = "mariadb -N -B -e {}".format
    # sysbench's rows take about 250 bytes with their index: 4 tables of this many rows.
    rows = max(10000, int(gib * 1024**3 / 250 / 4))
    common = (
        f"--db-driver=mysql --mysql-host={primary_addr} --mysql-user=bench --mysql-password={password} "
        f"--mysql-db=sbtest --tables=4 --table-size={rows} --threads={threads}"
    )
    out: dict = {"primary": primary, "replica": replica, "backup_host": backup_host, "rows_per_table": rows}
    bench_account(lab, primary, client_addr, password)
    try:
        with Hole(lab, primary, 3306, client_addr):
            log(f"backup: sysbench prepare (4 tables x {rows} rows, about {gib} GiB) ...")
            started = time.time()
            lab.sh(
                CLIENT,
                f"sysbench oltp_write_only {common} cleanup >/dev/null 2>&1; "
                f"sysbench oltp_write_only {common} prepare >/dev/null",
                timeout=7200,
            )
            out["prepare_seconds"] = round(time.time() - started, 1)
            position = lab.sh(primary, sql("'SELECT @@gtid_binlog_pos'")).stdout.strip()
            lab.sh(replica, sql(shlex.quote(f"SELECT MASTER_GTID_WAIT('{position}', 1800)")), timeout=1900)
            size = lab.sh(
                replica,
                sql(
                    "'SELECT SUM(data_length + index_length) FROM information_schema.tables "
                    'WHERE table_schema = "sbtest"\''
                ),
            ).stdout.strip()
            out["database_bytes"] = int(float(size or 0))
            log("backup: a full backup from the replica to the backup host ...")
            started = time.time()
            meta = json.loads(
                lab.sh(backup_host, f"{BACKUP_AGENT} take /etc/webinfra/backup.json --full", timeout=7200).stdout
            )
            elapsed = time.time() - started
            out["backup"] = {
                "id": meta["id"],
                "source": meta["source"],
                "seconds": round(elapsed, 1),
                "compressed_bytes": meta["size"],
                "mb_per_second": round(out["database_bytes"] / 1e6 / elapsed, 1),
            }
            log(f"backup: sysbench oltp_write_only {seconds} s while the archive's lag is measured every second ...")
            lag_holder: dict = {}
            sampler = threading.Thread(
                target=lambda: lag_holder.update(lags=archive_lag(lab, primary, backup_host, seconds)), daemon=True
            )
            sampler.start()
            lab.sh(CLIENT, f"sysbench oltp_write_only {common} --time={seconds} run >/dev/null", timeout=seconds + 300)
            sampler.join(timeout=seconds + 120)
            lags = lag_holder.get("lags", [])
            out["archive_lag"] = {
                "samples": len(lags),
                "p50_seconds": percentile(lags, 50),
                "p99_seconds": percentile(lags, 99),
                "max_seconds": max(lags) if lags else None,
            }
        log(f"backup: restore of {meta['id']} onto {backup_host} (scratch) ...")
        elapsed, _changed, _text = lab.playbook(
            str(ROOT / "playbooks" / "restore.yml"),
            "-e",
            json.dumps({"restore_target": backup_host, "restore_backup": meta["id"]}),
        )
        out["restore_seconds"] = round(elapsed, 1)
        # oltp_write_only deletes and inserts in pairs: every table keeps its row count.
        counts = " + ".join(f"(SELECT COUNT(*) FROM sbtest.sbtest{i})" for i in range(1, 5))  # noqa: S608 - fixed table names
        restored = lab.sh(backup_host, sql(shlex.quote(f"SELECT {counts}"))).stdout.strip()
        out["restored_rows"] = int(restored or 0)
        out["restored_rows_expected"] = 4 * rows
        lab.sh(backup_host, "systemctl disable --now mariadb >/dev/null 2>&1", check=False)
        out["rebuild"] = bench_rebuild(lab, primary, replica)
        log("backup: a restore drill on the backup host ...")
        started = time.time()
        drill = json.loads(lab.sh(backup_host, f"{BACKUP_AGENT} drill /etc/webinfra/backup.json", timeout=7200).stdout)
        out["drill"] = {
            "seconds": round(time.time() - started, 1),
            "ok": drill["ok"],
            "tables": drill["tables"],
            "compared_with": drill["compared_with"],
        }
    finally:
        lab.sh(CLIENT, f"sysbench oltp_write_only {common} cleanup >/dev/null 2>&1", check=False)
        lab.sh(
            primary,
            sql(shlex.quote(f"DROP USER IF EXISTS 'bench'@'{client_addr}'; DROP DATABASE IF EXISTS sbtest")),
            check=False,
        )
    b, lag = out.get("backup", {}), out.get("archive_lag", {})
    log(
        f"backup: {out.get('database_bytes', 0) / 1e9:.2f} GB backed up in {b.get('seconds')} s "
        f"({b.get('mb_per_second')} MB/s, {b.get('compressed_bytes')} bytes stored); restore "
        f"{out.get('restore_seconds')} s; archive lag p50 {lag.get('p50_seconds')} s, max {lag.get('max_seconds')} s"
    )
    return out


# --- report ------------------------------------------------------------------------------------
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


def judge(results: dict) -> dict:
    verdict = {}
    if "deploy" in results:
        d = results["deploy"]["noop_rerun"]
        verdict["noop_rerun_changed_0_under_60s"] = (
            d["changed"] == 0 and d["seconds"] < TARGETS["noop_rerun_seconds_max"]
        )
    if "datapath" in results and results["datapath"].get("app_ratio") is not None:
        verdict["balancer_app_rps_at_least_0.9_of_direct"] = (
            results["datapath"]["app_ratio"] >= TARGETS["balancer_vs_direct_app_rps_min"]
        )
    if "faults" in results:
        verdict["backend_kill_0_failed"] = results["faults"]["failed"] <= TARGETS["backend_kill_failed_requests_max"]
    if "replication" in results and results["replication"].get("lag_p99_seconds") is not None:
        verdict["replication_lag_p99_at_most_1s"] = (
            results["replication"]["lag_p99_seconds"] <= TARGETS["replication_lag_p99_seconds_max"]
        )
    if "ha" in results:
        h = results["ha"]
        verdict["lb_failover_at_most_3s"] = (h["lb_failover"]["max_gap_seconds"] or 0) <= TARGETS[
            "lb_failover_seconds_max"
        ]
        verdict["switchover_window_at_most_5s_0_lost"] = (h["switchover"]["write_window_seconds"] or 0) <= TARGETS[
            "switchover_write_window_seconds_max"
        ] and h["switchover"]["lost_acknowledged_writes"] == 0
        if "auto_failover" in h:
            a = h["auto_failover"]
            verdict["auto_failover_window_at_most_30s_0_lost_never_two_writable"] = (
                a["write_window_worst_seconds"] <= TARGETS["auto_failover_write_window_seconds_max"]
                and a["lost_acknowledged_writes"] == 0
                and a["double_writable_samples"] == 0
            )
    return verdict


def deploy_lines(d: dict) -> list[str]:
    """The deploy step's rows of the results table."""
    lines = [
        f"| {label} | {d[key]['seconds']} s, changed={d[key]['changed']} |"
        for key, label in (
            ("fresh", "site.yml on fresh hosts"),
            ("noop_rerun", "site.yml no-op re-run"),
            ("check", "site.yml --check"),
        )
    ]
    if "apt_floor" in d:
        lines += [
            f"| site.yml on fresh hosts, second sample | {d['fresh_again']['seconds']} s |",
            f"| floor: one apt transaction per host, all hosts at once | {d['apt_floor']['seconds']} s |",
            f"| floor: one trivial module run on every host | {d['module_floor']['seconds']} s |",
            f"| fresh deploy / its floor (the faster sample) | {d['ratios']['fresh_to_apt_floor']} |",
            f"| no-op re-run / its floor | {d['ratios']['noop_to_module_floor']} |",
        ]
    return lines


def markdown(report: dict) -> str:  # noqa: PLR0915 - one table, a block per step
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
    if "deploy" in r:
        lines += deploy_lines(r["deploy"])
    if "mitogen" in r:
        lines += mitogen_lines(r["mitogen"])
    if "scaling" in r:
        lines += scaling_lines(r["scaling"])
    if "datapath" in r:
        d = r["datapath"]
        for page in ("static", "app"):
            for where in ("balancer", "direct"):
                x = d[f"{page}_{where}"]
                lines.append(
                    f"| {page} page via {where} ({d['connections']} conns) | "
                    f"{x['rps']} req/s, p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms |"
                )
            lines.append(f"| {page} page: balancer / direct | {d[f'{page}_ratio']} |")
        if "app_balancer_one_backend" in d:
            x = d["app_balancer_one_backend"]
            lines.append(
                f"| app page via balancer over {d['direct']} only | {x['rps']} req/s, p50 {x['p50_ms']} ms, "
                f"p99 {x['p99_ms']} ms; ratio to direct {d['app_ratio_one_backend']} |"
            )
        for key, label in (
            ("app_balancer", "via balancer"),
            ("app_balancer_one_backend", "via balancer, one backend"),
            ("app_direct", "direct"),
        ):
            cpu = d.get(key, {}).get("cpu_ms_per_request")
            if cpu:
                parts = ", ".join(f"{k} {v}" for k, v in cpu.items() if v >= 0.005)
                lines.append(f"| app page {label}: CPU ms per request | {parts} |")
    if "faults" in r:
        f = r["faults"]
        lines.append(
            f"| app SIGKILLed on {f['victim']} under load | {f['failed']} failed "
            f"of {f['requests']}; DOWN after {f['marked_down_after_seconds']} s, "
            f"UP after restart {f['back_up_after_seconds']} s |"
        )
    if "replication" in r:
        x = r["replication"]
        lines.append(
            f"| sysbench oltp_write_only {x['seconds']} s x {x['threads']} "
            f"threads | {x['tps']} tps, p95 {x['latency_p95_ms']} ms |"
        )
        lines.append(
            f"| replica lag ({x['lag_samples']} samples, every {x['lag_sampling_interval_seconds']} "
            f"s) | max {x['lag_max_seconds']} s, p99 {x['lag_p99_seconds']} s |"
        )
        lines.append(f"| checksums primary = replica | {x['checksums_match']} |")
    if "console" in r:
        x = r["console"]
        states = ", ".join(f"{k} {v}" for k, v in x["backends"].items())
        roles = ", ".join(f"{k} {v[1]}" for k, v in x["databases"].items())
        lines.append(
            f"| overview page in {x['browser']} | backends: {states}; databases: {roles}; "
            f"alerts firing: {', '.join(x['alerts_firing']) or 'none'}; screenshot {x['screenshot']} |"
        )
    if "backup" in r:
        x = r["backup"]
        b, lag = x["backup"], x["archive_lag"]
        lines.append(
            f"| full backup of {x['database_bytes'] / 1e9:.2f} GB ({b['source']} to {x['backup_host']}) | "
            f"{b['seconds']} s, {b['mb_per_second']} MB/s, {b['compressed_bytes'] / 1e6:.0f} MB stored |"
        )
        lines.append(
            f"| binary-log archive lag under sysbench writes ({lag['samples']} samples) | "
            f"p50 {lag['p50_seconds']} s, p99 {lag['p99_seconds']} s, max {lag['max_seconds']} s |"
        )
        lines.append(
            f"| restore of that backup onto {x['backup_host']} (restore.yml) | {x['restore_seconds']} s, "
            f"{x['restored_rows']} of {x['restored_rows_expected']} rows |"
        )
        if "rebuild" in x:
            rb, dr = x["rebuild"], x["drill"]
            lines.append(
                f"| rebuild of {x['replica']} streamed from {x['primary']} (rebuild.yml) | {rb['seconds']} s "
                f"({rb['agent_seconds']} s copying and preparing); the primary's disk grew by at most "
                f"{rb['primary_disk_growth_bytes'] / 1e6:.1f} MB |"
            )
            lines.append(
                f"| restore drill on {x['backup_host']} ({dr['tables']} tables, compared with {dr['compared_with']}) | "
                f"{dr['seconds']} s, {'passed' if dr['ok'] else 'FAILED'} |"
            )
    if "ha" in r:
        h = r["ha"]
        lb, sw = h["lb_failover"], h["switchover"]
        lines.append(f"| HA lab ({h['hosts']} hosts) site.yml on fresh hosts | {h['deploy_seconds']} s |")
        lines.append(
            f"| {lb['stopped']} (VRRP master) stopped under GET load | {lb['max_gap_seconds']} s without service, "
            f"{lb['failed']} failed of {lb['requests']}; address now on {lb['new_holder']} |"
        )
        lines.append(
            f"| switchover under write load | {sw['write_window_seconds']} s without an acknowledged write, "
            f"{sw['failed_writes']} refused, {sw['lost_acknowledged_writes']} of {sw['acknowledged_writes']} "
            f"acknowledged writes lost; playbook {sw['playbook_seconds']} s |"
        )
        if "auto_failover" in h:
            a = h["auto_failover"]
            lines.append(
                f"| automatic failover, leader frozen under write load ({len(a['trials'])} trials) | write window "
                f"median {a['write_window_median_seconds']} s, worst {a['write_window_worst_seconds']} s; "
                f"{a['lost_acknowledged_writes']} acknowledged writes lost; "
                f"{a['double_writable_samples']} samples with two writable servers |"
            )
    lines += ["", "Targets (reported, not asserted):", ""]
    lines += [f"- {k}: {'met' if v else 'NOT met'}" for k, v in report["targets_met"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - the steps in order
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
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

    lab = Lab(args.inventory)
    if set(steps) - {"ha", "scaling"} and not lab.ca.exists():
        raise SystemExit(f"bench: {lab.ca} is missing: run `make lab` first")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results: dict = {}
    if "deploy" in steps:
        results["deploy"] = bench_deploy(lab)
    if "mitogen" in steps:
        results["mitogen"] = bench_mitogen(lab)
    if set(steps) & {"datapath", "faults", "replication", "console", "backup"}:
        ensure_client(lab)
    if "datapath" in steps:
        results["datapath"] = bench_datapath(lab, args.wrk_seconds, args.wrk_connections)
    if "faults" in steps:
        results["faults"] = bench_faults(lab)
    if "replication" in steps:
        results["replication"] = bench_replication(lab, args.sysbench_seconds, args.sysbench_threads)
    if "console" in steps:
        results["console"] = bench_console(lab, args.console_url, Path(args.out) / f"{started}-console.png")
    if "backup" in steps:
        results["backup"] = bench_backup(lab, args.backup_gib, args.sysbench_seconds, args.sysbench_threads)
    if "ha" in steps:
        results["ha"] = bench_ha(args.ha_inventory, args.failover_trials)
    if "scaling" in steps:
        results["scaling"] = bench_scaling(parse_shapes(args.scaling_shapes))
    report = {"started": started, "debian": lab.debian, "machine": machine(), "results": results}
    report["targets_met"] = judge(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    for name in (started, "latest"):
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / f"{name}.md").write_text(text)
    print()
    print(text)
    log(f"results: {out / (started + '.json')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
