"""High availability under bounded load from the client host: the balancer pair's virtual IP,
automatic database failover by the HA agents (leader lease in etcd), self-fencing, and a
planned switchover through the agents.

Order matters (pytest runs the file top to bottom): bad input first (nothing changes), then
the balancer failover (lb-01 stays stopped; lb-02 serves the rest), the primary db-01 frozen
(podman pause: it answers nothing, like a dead host, and keeps its address - podman gives a
restarted container a new one) until db-02 takes over by itself, db-01 resumed (it fences
itself at once and rejoins as a replica), site.yml with the unchanged inventory (db-02 stays
the leader), and a switchover back to db-01 through the agents. A sampler reads read_only on
both database hosts every 200 ms during the failure tests: never two writable.
Measured windows are printed (pytest -s / the Molecule log) and bounded only loosely here.
"""

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from labhosts import (
    PROJECT,
    ca_certificate,
    groups,
    haproxy_stat,
    host,
    hostvars,
    http_json,
    inventory,
    run_playbook,
    sql,
    wait_for,
)

LBS = groups()["loadbalancers"]
CLIENT = groups()["clients"][0]
LAB = hostvars(CLIENT)["webinfra_lab_name"]
TOOL = "/usr/local/bin/webinfra-writeload"
# Shared between the tests that run in order: the inventory of the current addresses.
STATE = {}
CA = "/root/webinfra-ca.pem"


def vip():
    conf = host("lb-02").file("/etc/keepalived/keepalived.conf").content_string
    return conf.split("virtual_ipaddress {", 1)[1].split()[0].split("/")[0]


VIP = vip()


def holder():
    """The balancer holding the virtual IP, or None."""
    for name in LBS:
        state = podman("inspect", "--format", "{{.State.Running}}", f"{LAB}-{name}").stdout.strip()
        if state == "true" and f"inet {VIP}/32" in host(name).run("ip -o -4 addr show").stdout:
            return name
    return None


@pytest.fixture(scope="module")
def client():
    c = host(CLIENT)
    source = (Path(PROJECT) / "tools" / "writeload.py").read_text()
    c.check_output("printf '%%s' %s > %s", source, TOOL)
    c.check_output("printf '%%s' %s > %s", ca_certificate(), CA)
    return c


class Load:
    """writeload.py running on the client against the virtual IP until stopped."""

    def __init__(self, client, method, path, name):
        self.client, self.method, self.path, self.name = client, method, path, name

    def __enter__(self):
        n = self.name
        self.client.run(f"rm -f /root/{n}.stop /root/{n}.ready /root/{n}.json")
        self.client.run(
            f"nohup python3 {TOOL} --url https://{VIP}{self.path} --method {self.method} --prefix {n} "
            f"--cafile {CA} --stop-file /root/{n}.stop --ready-file /root/{n}.ready --duration 300 "
            f"> /root/{n}.json 2>/root/{n}.err &"
        )
        assert wait_for(lambda: self.client.file(f"/root/{n}.ready").exists, timeout=30), self.client.run(
            f"cat /root/{n}.err"
        ).stdout
        return self

    def stop(self):
        self.client.run(f"touch /root/{self.name}.stop")
        assert wait_for(lambda: self.client.file(f"/root/{self.name}.json").size > 0, timeout=30)
        return json.loads(self.client.file(f"/root/{self.name}.json").content_string)

    def __exit__(self, *exc):
        self.client.run(f"touch /root/{self.name}.stop")


def report(label, result):
    """Print the measured window (seen with pytest -s and in the Molecule log)."""
    print(f"\n{label}: {result['max_gap_s']} s without a successful response;", end=" ")
    print(f"{result['failed']} failed of {result['requests']} ({result['errors']})")


def podman(*args):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)


def output(proc):
    """What ansible-playbook printed (errors go to stderr)."""
    return proc.stdout + proc.stderr


def writable(name):
    return sql(name, "SELECT @@GLOBAL.read_only") == "0"


def writer_servers():
    lb = host(holder())
    rows = [r for r in haproxy_stat(lb) if r["pxname"] == "db_writer"]
    return {r["svname"]: r["status"] for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}


def test_the_pair_shares_one_virtual_ip_and_the_writer_endpoint_follows_the_primary():
    assert holder() == "lb-01"  # highest priority
    assert writer_servers() == {"db-01": "UP", "db-02": "DOWN"}
    conf = host("lb-02").file("/etc/keepalived/keepalived.conf").content_string
    assert "unicast_peer" in conf and "vrrp_script haproxy_health" in conf
    # The application writes through the endpoint: its responses name the database host.
    status, body = http_json(host(CLIENT), f"https://{VIP}/api/notes", {"body": "through the writer endpoint"})
    assert status == 201, body


def health(tmp_path, *args):
    """Run the health playbook; returns (process, report)."""
    path = tmp_path / "health.json"
    proc = run_playbook("playbooks/health.yml", "-e", f"health_report_file={path}", *args)
    return proc, (json.loads(path.read_text()) if path.exists() else {})


def test_health_report_of_the_deployed_pair_is_healthy(tmp_path):
    """The writer endpoint is healthy with exactly one server UP: the read-only db-02 is DOWN
    there by design and no problem; the report names the balancer holding the virtual IP."""
    proc, result = health(tmp_path)
    assert proc.returncode == 0, output(proc)[-3000:]
    assert result["healthy"] and result["vip_holder"] == "lb-01", result
    for lb in LBS:
        row = next(r for r in result["checks"] if r[0] == lb and r[1] == "writer db_writer")
        assert row[2] == "ok" and row[3] == "writes go to db-01; standby (read-only): db-02", row


def test_bad_input_changes_nothing():
    # Switchover to a host that is not a replica (the primary itself) and to an unknown host.
    for target in ("db-01", "web-01"):
        proc = run_playbook("playbooks/switchover.yml", "-e", f"new_primary={target}")
        assert proc.returncode != 0 and "switchover refused, nothing changed" in output(proc), output(proc)[-3000:]
    # A replica lagging more than allowed (switchover_max_lag -1 makes any lag too much).
    proc = run_playbook("playbooks/switchover.yml", "-e", "new_primary=db-02", "-e", "switchover_max_lag=-1")
    assert proc.returncode != 0 and "lags" in output(proc), output(proc)[-3000:]
    # Forcing a failover while a leader holds the lease (and automatic failover is on): refused.
    proc = run_playbook("playbooks/failover.yml")
    assert proc.returncode != 0 and "db-01 holds the leader lease" in output(proc), output(proc)[-3000:]
    # A virtual IP outside the balancers' network: preflight names the variable.
    preflight = ("site.yml", "--tags", "preflight", "--skip-tags", "haproxy", "--limit", "loadbalancers")
    proc = run_playbook(*preflight, "-e", "webinfra_vip=192.0.2.10")
    assert proc.returncode != 0 and "outside the balancers' network" in output(proc), output(proc)[-3000:]
    proc = run_playbook(*preflight, "-e", "keepalived_router_id=300")
    message = "keepalived_router_id must be between 1 and 255"
    assert proc.returncode != 0 and message in output(proc), output(proc)[-3000:]
    assert writable("db-01") and not writable("db-02")


def test_stopping_lb_01_moves_the_virtual_ip_to_lb_02(client):
    with Load(client, "GET", "/", "lbfail") as load:
        wait_for(lambda: False, timeout=3)
        assert podman("stop", "-t", "0", f"{LAB}-lb-01").returncode == 0
        assert wait_for(lambda: holder() == "lb-02", timeout=15)
        wait_for(lambda: False, timeout=5)
        result = load.stop()
    report("Load balancer failover (GET)", result)
    assert result["ok"] > 0 and result["max_gap_s"] is not None
    assert result["max_gap_s"] < 15
    assert "keepalived-notify" in host("lb-02").check_output("journalctl -t keepalived-notify --no-pager")


class Sampler:
    """read_only of every database host every 200 ms (podman exec: a frozen host fails fast)."""

    def __init__(self, names=("db-01", "db-02")):
        self.names, self.samples, self.stop = names, [], threading.Event()

    def read(self, name):
        try:
            proc = subprocess.run(
                ["podman", "exec", f"{LAB}-{name}", "timeout", "1", "mariadb", "-NBe", "SELECT @@GLOBAL.read_only"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout.strip() == "0" if proc.returncode == 0 else None

    def loop(self):
        while not self.stop.is_set():
            self.samples.append((time.time(), {name: self.read(name) for name in self.names}))
            time.sleep(0.2)

    def __enter__(self):
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def double_writable(self):
        return [t for t, seen in self.samples if sum(1 for v in seen.values() if v) > 1]

    def first(self, name, value):
        return next((t for t, seen in self.samples if seen.get(name) is value), None)


def agent_status(name):
    address = host(name).check_output("hostname -I").split()[0]
    read = f"import urllib.request; print(urllib.request.urlopen('http://{address}:3308/status').read().decode())"
    return json.loads(host(name).check_output(f'python3 -c "{read}"'))


def lost_writes(result, leader, prefix):
    stored = set(sql(leader, f"SELECT body FROM webapp.notes WHERE body LIKE '{prefix}-%'").split())  # noqa: S608
    return [body for body in result["acked"] if body not in stored]


def replicates_from(name, source):
    status = host(name).check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")
    address = host(source).check_output("hostname -I").split()[0]
    return "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status and address in status


def test_etcd_cluster_is_healthy_with_client_certificates_only():
    web = host("web-01")
    members = ("db-01", "db-02", "web-01")
    endpoints = ",".join(f"https://{host(n).check_output('hostname -I').split()[0]}:2379" for n in members)
    tls = "--cacert=/etc/etcd/tls/ca.pem --cert=/etc/etcd/tls/member.pem --key=/etc/etcd/tls/member.key"
    health = web.run(f"ETCDCTL_API=3 etcdctl --endpoints={endpoints} {tls} endpoint health")
    assert health.rc == 0 and health.stderr.count("is healthy") + health.stdout.count("is healthy") == 3, health
    # Without a client certificate etcd refuses.
    first = endpoints.split(",")[0]
    refused = web.run(f"ETCDCTL_API=3 etcdctl --endpoints={first} --cacert=/etc/etcd/tls/ca.pem get /x")
    assert refused.rc != 0
    assert agent_status("db-02")["leader"] == "db-01"


def test_automatic_failover_when_the_primary_freezes(client):
    with Sampler() as sampler, Load(client, "POST", "/api/notes", "fo") as load:
        wait_for(lambda: False, timeout=3)
        frozen_at = time.time()
        assert podman("pause", f"{LAB}-db-01").returncode == 0
        assert wait_for(lambda: sampler.first("db-02", True) is not None, timeout=60), sampler.samples[-5:]
        assert wait_for(lambda: writer_servers().get("db-02") == "UP", timeout=15)
        wait_for(lambda: False, timeout=4)
        result = load.stop()
    report("Automatic failover (writes, primary frozen)", result)
    print(f"db-02 writable {sampler.first('db-02', True) - frozen_at:.1f} s after db-01 froze")
    assert sampler.double_writable() == []
    lost = lost_writes(result, "db-02", "fo")
    assert result["acked"] and lost == [], f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    assert agent_status("db-02")["leader"] == "db-02"


def test_the_resumed_old_primary_fences_itself_and_rejoins_as_a_replica():
    with Sampler() as sampler:
        assert podman("unpause", f"{LAB}-db-01").returncode == 0
        assert wait_for(lambda: sampler.first("db-01", False) is not None, timeout=20), sampler.samples[-5:]
        assert wait_for(lambda: replicates_from("db-01", "db-02"), timeout=30)
    assert sampler.double_writable() == [], sampler.double_writable()
    assert writable("db-02") and not writable("db-01")
    assert writer_servers().get("db-01") == "DOWN"
    assert "fencing" in host("db-01").check_output("journalctl -u webinfra-ha-agent --no-pager")


def test_site_playbook_with_the_original_inventory_keeps_the_leader(tmp_path):
    """lb-01 is started again; site.yml runs with the inventory still naming db-01 the primary:
    db-02 stays the only writable server, and the database hosts report no change."""
    assert podman("start", f"{LAB}-lb-01").returncode == 0
    lb01 = host("lb-01")
    booted = ("running", "degraded")
    assert wait_for(lambda: lb01.run("systemctl is-system-running").stdout.strip() in booted, timeout=90)
    # Restarted containers get new addresses from podman: Ansible reaches them by the current ones.
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    current = {
        name: podman("inspect", "--format", fmt, f"{LAB}-{name}").stdout.strip()
        for name in inventory()["_meta"]["hostvars"]
    }
    extra = tmp_path / "addresses.yml"
    extra.write_text(json.dumps({"all": {"hosts": {name: {"ansible_host": ip} for name, ip in current.items()}}}))
    proc = run_playbook("site.yml", "-i", str(extra))
    assert proc.returncode == 0, output(proc)[-4000:]
    assert writable("db-02") and not writable("db-01")
    assert replicates_from("db-01", "db-02")
    recap = output(proc).split("PLAY RECAP", 1)[1]
    for name in ("db-01", "db-02"):
        line = next(x for x in recap.splitlines() if x.startswith(name))
        assert "changed=0" in line, line
    STATE["inventory"] = extra


def test_switchover_back_through_the_agents_loses_no_acknowledged_write(client, tmp_path):
    with Sampler() as sampler, Load(client, "POST", "/api/notes", "sw") as load:
        wait_for(lambda: False, timeout=3)
        proc = run_playbook("playbooks/switchover.yml", "-e", "new_primary=db-01", "-i", str(STATE["inventory"]))
        assert proc.returncode == 0, output(proc)[-4000:]
        wait_for(lambda: False, timeout=4)
        result = load.stop()
    report("Switchover through the agents (writes)", result)
    assert sampler.double_writable() == []
    assert writable("db-01") and not writable("db-02")
    assert wait_for(lambda: writer_servers() == {"db-01": "UP", "db-02": "DOWN"}, timeout=10)
    lost = lost_writes(result, "db-01", "sw")
    assert result["acked"] and lost == [], f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    assert wait_for(lambda: replicates_from("db-02", "db-01"), timeout=30)
    proc, result = health(tmp_path, "-i", str(STATE["inventory"]))
    print("\n" + "\n".join(result.get("table", [])))
    assert proc.returncode == 0 and result["healthy"], output(proc)[-3000:]
