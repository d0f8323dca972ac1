"""The deploy step: site.yml fresh, no-op and --check on re-created hosts, next to its floors (one apt
transaction per host, one trivial module run per host), and where the time goes."""

from __future__ import annotations

import json
import re
import threading
import time

from bench.common import ROOT, Lab, Step, lab_tool, log, run

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


NOOP_RERUN_SECONDS_MAX = 60


def deploy_judge(d: dict) -> dict:
    noop = d["noop_rerun"]
    return {"noop_rerun_changed_0_under_60s": noop["changed"] == 0 and noop["seconds"] < NOOP_RERUN_SECONDS_MAX}


STEP = Step(
    "deploy",
    "site.yml fresh, no-op and --check on re-created lab hosts, next to the apt and module floors",
    run=lambda ctx: bench_deploy(ctx.lab),
    lines=deploy_lines,
    judge=deploy_judge,
)
