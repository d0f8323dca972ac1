"""Operations against the real HAProxy under bounded load from a client host."""

import json
import time
from pathlib import Path

import pytest
from labhosts import PROJECT, ca_certificate, groups, haproxy_stat, host, run_module, run_playbook, wait_for

LB = groups()["loadbalancers"][0]
WEBS = groups()["webservers"]
CLIENT = groups()["clients"][0]
LOADGEN = "/usr/local/bin/webinfra-loadgen"
CA = "/root/webinfra-ca.pem"
INTER_S, FALL = 2, 3  # the haproxy role's defaults: a dead server is DOWN within inter x fall


@pytest.fixture(scope="module")
def client():
    c = host(CLIENT)
    source = (Path(PROJECT) / "tools" / "loadgen.py").read_text()
    c.check_output("printf '%%s' %s > %s", source, LOADGEN)
    c.check_output("python3 -m py_compile %s", LOADGEN)
    c.check_output("printf '%%s' %s > %s", ca_certificate(), CA)
    return c


class Load:
    """Bounded load from the client host through the balancer, stopped on demand."""

    # The load runs until stop() (the duration is a bound for a test that died, not a deadline
    # a slow rolling update could pass: the update must be under load from start to end).
    # Paced (each thread pauses 0.2 s: about 20 requests a second) so that the load does not
    # take the CPUs the update itself runs on (every host shares the test machine's); the
    # as-fast-as-possible trials are make bench's.
    def __init__(self, client, requests=1000000, concurrency=4, duration=1200, interval=0.2):
        self.client = client
        self.args = (requests, concurrency, duration, interval)

    def __enter__(self):
        requests, concurrency, duration, interval = self.args
        self.client.run("systemctl stop webinfra-load; systemctl reset-failed webinfra-load")
        self.client.run("rm -f /root/load.stop /root/load.ready /root/load.json")
        self.client.run(
            f"nohup python3 %s --url https://%s/ --cafile {CA} --requests %s --concurrency %s --duration %s "
            "--interval %s --stop-file /root/load.stop --ready-file /root/load.ready > /root/load.json "
            "2>/root/load.err &",
            LOADGEN,
            LB,
            str(requests),
            str(concurrency),
            str(duration),
            str(interval),
        )
        assert wait_for(lambda: self.client.file("/root/load.ready").exists, timeout=30), "load did not start"
        return self

    def stop(self):
        self.client.run("touch /root/load.stop")
        assert wait_for(lambda: self.client.file("/root/load.json").size > 0, timeout=60), "load did not finish"
        return json.loads(self.client.file("/root/load.json").content_string)

    def __exit__(self, *exc):
        self.client.run("touch /root/load.stop")


def server_state(name):
    return next(r for r in haproxy_stat(host(LB)) if r["pxname"] == "webservers" and r["svname"] == name)


def test_haproxy_server_drain_maint_reload_enable_against_the_real_haproxy():
    web = WEBS[0]
    drained = run_module(
        LB,
        "webinfra.distributed.haproxy_server",
        {"backend": "webservers", "server": web, "state": "drain", "wait": True},
    )
    assert drained["changed"] and drained["after"]["admin_state"] == "drain", drained
    again = run_module(
        LB, "webinfra.distributed.haproxy_server", {"backend": "webservers", "server": web, "state": "drain"}
    )
    assert not again["changed"]
    # Drain then maintenance completes (a long-standing bug of the public module).
    maint = run_module(
        LB,
        "webinfra.distributed.haproxy_server",
        {"backend": "webservers", "server": web, "state": "disabled", "wait": True},
    )
    assert maint["after"]["status"] == "MAINT" and maint["after"]["admin_state"] == "disabled"
    # The administrative state survives a reload of HAProxy.
    host(LB).check_output("systemctl reload haproxy")
    assert wait_for(lambda: server_state(web)["status"] == "MAINT", timeout=10)
    enabled = run_module(
        LB,
        "webinfra.distributed.haproxy_server",
        {"backend": "webservers", "server": web, "state": "enabled", "wait": True, "wait_timeout": 30},
    )
    assert enabled["after"]["status"] == "UP", enabled


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"backend": "webservers", "server": "web-09", "state": "drain"},
            "server 'web-09' does not exist in backend 'webservers'; servers: web-01, web-02",
        ),
        (
            {"backend": "nope", "server": "web-01", "state": "drain"},
            "backend 'nope' does not exist; backends: webservers",
        ),
        (
            {"backend": "webservers", "server": "web-01", "state": "drain", "socket": "/run/haproxy/none.sock"},
            "/run/haproxy/none.sock does not exist",
        ),
    ],
)
def test_haproxy_server_bad_input_names_what_exists(args, message):
    result = run_module(LB, "webinfra.distributed.haproxy_server", args)
    assert result.get("failed") and message in result["msg"], result


def test_health_playbook_reports_healthy_then_names_a_dead_app(tmp_path):
    report_file = tmp_path / "health.json"
    ok = run_playbook("playbooks/health.yml", "-e", f"health_report_file={report_file}")
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-3000:]
    report = json.loads(report_file.read_text())
    assert report["healthy"] and any(row[1] == "app" for row in report["checks"])
    web = WEBS[1]
    host(web).check_output("systemctl stop webapp")
    try:
        assert wait_for(lambda: server_state(web)["status"].startswith("DOWN"), timeout=15)
        bad = run_playbook("playbooks/health.yml")
        output = " ".join((bad.stdout + bad.stderr).split())
        assert bad.returncode != 0
        assert f"{web}: app" in output and f"webservers/{web} is DOWN" in output, output[-3000:]
    finally:
        host(web).check_output("systemctl start webapp")
        assert wait_for(lambda: server_state(web)["status"] == "UP", timeout=30)


def test_rolling_update_under_load_has_no_failed_requests(client):
    before = {w: host(w).file("/srv/webapp/current").linked_to for w in WEBS}
    with Load(client) as load:
        started = time.time()
        result = run_playbook("playbooks/rolling_update.yml", "-e", "nginx_app_version=v2-rolled")
        took = time.time() - started
        summary = load.stop()
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    print(
        f"rolling update: {took:.0f} s, {summary['requests']} requests, {summary['failed']} failed, "
        f"versions per host {summary['versions_seen_per_host']}"
    )
    assert summary["failed"] == 0, summary
    for web in WEBS:
        seen = summary["versions_seen_per_host"][web]
        assert seen[-1] == "v2-rolled" and len(seen) >= 2, summary  # served old, then new
        assert host(web).file("/srv/webapp/previous").linked_to == before[web]


def test_rollback_is_one_command_and_also_rolls():
    result = run_playbook("playbooks/rolling_update.yml", "-e", "nginx_app_rollback=true")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for web in WEBS:
        assert host(web).file("/srv/webapp/current/.webinfra-version").content_string.strip() != "v2-rolled"


def marked_down_at(web, since):
    """When HAProxy logged web as DOWN, on its own clock (the journal's receipt time, in s)."""
    out = host(LB).check_output(f"journalctl -u haproxy --since @{since:.0f} -o json --no-pager")
    for line in out.splitlines():
        entry = json.loads(line)
        message = entry.get("MESSAGE")
        if isinstance(message, str) and f"Server webservers/{web} is DOWN" in message:
            stamp = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            if stamp >= since:
                return stamp, message
    return None, out[-3000:]


def test_killed_backend_is_marked_down_within_inter_x_fall_and_requests_survive(client):
    web = WEBS[1]
    with Load(client) as load:
        # The kill's time on the host's clock (the hosts share the kernel's clock with the
        # balancer), so the bound measures HAProxy, not how fast this test can poll it.
        killed = float(host(web).check_output("systemctl kill --signal=SIGKILL webapp && date +%s.%N"))
        host(web).check_output("systemctl stop webapp")
        down = wait_for(lambda: server_state(web)["status"].startswith("DOWN"), timeout=30, interval=0.2)
        time.sleep(1)
        summary = load.stop()
    host(web).check_output("systemctl start webapp")
    assert wait_for(lambda: server_state(web)["status"] == "UP", timeout=30)
    assert down, "the killed backend was never marked DOWN"
    logged, message = marked_down_at(web, killed - 1)
    assert logged is not None, f"no 'Server webservers/{web} is DOWN' in HAProxy's journal: {message}"
    detected = logged - killed
    print(
        f"backend kill: DOWN after {detected:.2f} s ({message}), {summary['requests']} requests, "
        f"{summary['failed']} failed {summary['errors']}"
    )
    # inter x fall, plus one check timeout for the check in flight when the app died.
    assert 0 <= detected <= INTER_S * FALL + 3, message
    # Connection failures and 502s are retried on the other server; only a response cut
    # mid-body by the kill cannot be retried, so at most the in-flight requests may fail.
    assert summary["failed"] <= 4, summary
