"""The ha step: a second lab with two balancers and separate database hosts; balancer failover,
switchover and automatic failover under load, read_only sampled on every database host."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.common import CLIENT, ROOT, Lab, Step, ensure_client, lab_tool, log, run
from bench.matrix import bench_matrix, matrix_judge, matrix_lines
from probes import ReadOnlySampler, Shell, agent_status, haproxy_servers, vip_holder


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


def shell(lab: Lab) -> Shell:
    return Shell(lab.name)


def holder(lab: Lab, vip: str) -> str | None:
    return vip_holder(shell(lab), lab.groups["loadbalancers"], vip)


def writer_states(lab: Lab, lb: str | None) -> dict[str, str]:
    """{server: HAProxy status} of the writer endpoint's servers on balancer `lb`."""
    if lb is None:
        return {}
    return haproxy_servers(shell(lab), lb, lab.hostvars[lb].get("haproxy_db_writer_name", "db_writer"))


def writable_after(sampler: ReadOnlySampler, host: str, since: float) -> float | None:
    """Seconds from `since` until `host` was first seen writable (None: never)."""
    first = sampler.first(host, True, since)
    return None if first is None else first - since


def agent_leader(lab: Lab, host: str) -> str | None:
    return agent_status(shell(lab), host).get("leader") or None


def wait_synchronous(lab: Lab, leader: str, others: list[str], timeout: float = 60) -> bool:
    """A leader that runs asynchronously is never replaced automatically, nor by a replica whose
    lag is unknown (just reconnected): wait until the leader runs semi-synchronously and every
    other agent measured no lag."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if agent_status(shell(lab), leader).get("db", {}).get("semisync") and all(
            agent_status(shell(lab), other).get("lag") == 0 for other in others
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
        with ReadOnlySampler(shell(lab), dbs) as sampler:
            time.sleep(3)
            frozen = time.time()
            run(["podman", "pause", lab.container(leader)])
            deadline = time.time() + 90
            new = None
            while time.time() < deadline and new is None:
                time.sleep(0.5)
                new = next((h for h in dbs if h != leader and writable_after(sampler, h, frozen) is not None), None)
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
            "promoted_after_seconds": round(writable_after(sampler, new, frozen), 1),
            "write_window_seconds": res["max_gap_s"],
            "failed_writes": res["failed"],
            "errors": res["errors"],
            "writer_endpoint_at_end": endpoint,
            "acknowledged_writes": len(res["acked"]),
            "lost_acknowledged_writes": len(lost),
            "double_writable_samples": len(sampler.double_writable()),
            "samples": len(sampler.samples),
            "timeline": timeline(
                res["events"],
                frozen,
                {"leader frozen": 0.0, "new leader writable": writable_after(sampler, new, frozen)},
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


def bench_ha(  # noqa: PLR0913 - the step's settings
    inventory: str,
    trials: int = 5,
    matrix_trials: int = 0,
    matrix_quick: int = 0,
    matrix_faults: list[str] | None = None,
    save: Path | None = None,
) -> dict:  # noqa: PLR0915 - one sequence of measurements
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
        if matrix_trials > 0:
            # First, while every host runs (its configuration change runs site.yml on them; the
            # balancer failover below stops one for good); it ends with db_primary leading again.
            out["matrix"] = bench_matrix(lab, vip, matrix_trials, matrix_quick, matrix_faults, save)

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


def ha_lines(h: dict) -> list[str]:
    """The ha step's rows of the results table."""
    lines: list[str] = []
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
    if "matrix" in h:
        lines += matrix_lines(h["matrix"])
    return lines


LB_FAILOVER_SECONDS_MAX = 3
SWITCHOVER_WRITE_WINDOW_SECONDS_MAX = 5
AUTO_FAILOVER_WRITE_WINDOW_SECONDS_MAX = 30


def ha_judge(h: dict) -> dict:
    verdict = {
        "lb_failover_at_most_3s": (h["lb_failover"]["max_gap_seconds"] or 0) <= LB_FAILOVER_SECONDS_MAX,
        "switchover_window_at_most_5s_0_lost": (h["switchover"]["write_window_seconds"] or 0)
        <= SWITCHOVER_WRITE_WINDOW_SECONDS_MAX
        and h["switchover"]["lost_acknowledged_writes"] == 0,
    }
    if "auto_failover" in h:
        a = h["auto_failover"]
        verdict["auto_failover_window_at_most_30s_0_lost_never_two_writable"] = (
            a["write_window_worst_seconds"] <= AUTO_FAILOVER_WRITE_WINDOW_SECONDS_MAX
            and a["lost_acknowledged_writes"] == 0
            and a["double_writable_samples"] == 0
        )
    if "matrix" in h:
        verdict.update(matrix_judge(h["matrix"]))
    return verdict


STEP = Step(
    "ha",
    "a second lab (lab-ha): balancer failover, switchover and automatic failover under load",
    run=lambda ctx: bench_ha(
        ctx.args.ha_inventory,
        ctx.args.failover_trials,
        ctx.args.matrix_trials,
        ctx.args.matrix_quick,
        [k for k in ctx.args.matrix_faults.split(",") if k] or None,
        ctx.out / f"{ctx.started}-matrix.json",
    ),
    lines=ha_lines,
    judge=ha_judge,
    needs_lab=False,
)
