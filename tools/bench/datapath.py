"""The datapath step: wrk through HAProxy and direct to one web server, and the CPU per request."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from bench.common import CLIENT, Hole, Lab, Step, log

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


def datapath_lines(d: dict) -> list[str]:
    """The datapath step's rows of the results table."""
    lines: list[str] = []
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
    return lines


BALANCER_VS_DIRECT_APP_RPS_MIN = 0.9


def datapath_judge(d: dict) -> dict:
    if d.get("app_ratio") is None:
        return {}
    return {"balancer_app_rps_at_least_0.9_of_direct": d["app_ratio"] >= BALANCER_VS_DIRECT_APP_RPS_MIN}


STEP = Step(
    "datapath",
    "wrk through HAProxy and direct to one web server, static and application pages",
    run=lambda ctx: bench_datapath(ctx.lab, ctx.args.wrk_seconds, ctx.args.wrk_connections),
    lines=datapath_lines,
    judge=datapath_judge,
    needs_client=True,
)
