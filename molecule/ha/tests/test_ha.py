"""High availability under bounded load from the client host: the balancer pair's virtual IP,
a planned switchover of the primary database, and a failover after the primary is killed.

Order matters (pytest runs the file top to bottom): bad input first (nothing changes), then
the balancer failover (lb-01 stays stopped; lb-02 serves the rest), the switchover db-01 ->
db-02, the failover after db-02 is killed (db-01 promoted), and db-02 restarted read-only.
Measured windows are printed (pytest -s / the Molecule log) and bounded only loosely here:
the targets (3 s, 10 s) are reported by `make bench`, not asserted.
"""

import json
import subprocess
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
    # Failover while the primary answers: a split brain, refused.
    proc = run_playbook("playbooks/failover.yml")
    assert proc.returncode != 0 and "still answers" in output(proc), output(proc)[-3000:]
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


def test_switchover_under_write_load_loses_no_acknowledged_write(client):
    with Load(client, "POST", "/api/notes", "sw") as load:
        wait_for(lambda: False, timeout=3)
        proc = run_playbook("playbooks/switchover.yml", "-e", "new_primary=db-02")
        assert proc.returncode == 0, output(proc)[-4000:]
        wait_for(lambda: False, timeout=4)
        result = load.stop()
    report("Switchover (writes)", result)
    assert writable("db-02") and not writable("db-01")
    assert wait_for(lambda: writer_servers() == {"db-01": "DOWN", "db-02": "UP"}, timeout=10)
    stored = set(sql("db-02", "SELECT body FROM webapp.notes WHERE body LIKE 'sw-%'").split())
    lost = [body for body in result["acked"] if body not in stored]
    assert result["acked"] and lost == [], f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    # The old primary replicates from the new one.
    status = host("db-01").check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")
    assert "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status, status


def test_failover_after_the_primary_is_killed(client):
    with Load(client, "POST", "/api/notes", "fo") as load:
        wait_for(lambda: False, timeout=3)
        assert podman("kill", f"{LAB}-db-02").returncode == 0
        proc = run_playbook("playbooks/failover.yml", "-e", "failed_primary=db-02")
        assert proc.returncode == 0, output(proc)[-4000:]
        wait_for(lambda: False, timeout=4)
        result = load.stop()
    report("Failover (writes)", result)
    assert writable("db-01")
    stored = set(sql("db-01", "SELECT body FROM webapp.notes WHERE body LIKE 'fo-%'").split())
    lost = [body for body in result["acked"] if body not in stored]
    assert result["acked"] and lost == [], f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    # Writes after the failover reach the new primary through the endpoint.
    assert wait_for(lambda: writer_servers().get("db-01") == "UP", timeout=10)


def test_the_old_primary_restarted_refuses_writes():
    assert podman("start", f"{LAB}-db-02").returncode == 0
    db02 = host("db-02")
    assert wait_for(lambda: db02.run("systemctl is-active mariadb").stdout.strip() == "active", timeout=90)
    assert not writable("db-02")
    denied = db02.run(
        "mariadb -u app_writer -pmolecule-writer-password webapp -e \"INSERT INTO notes (body) VALUES ('x')\""
    )
    assert denied.rc != 0 and "read-only" in denied.stderr, denied.stderr
    assert writer_servers().get("db-02") == "DOWN"


def test_a_restarted_primary_becomes_writable_again_only_when_no_other_host_is():
    # db-01 is the inventory's primary and, after the failover, the writable one again. Its
    # boot check asks db-02's agent at the address it had (a restarted container may get
    # another one from podman: then nobody answers and db-01 must stay read-only).
    db01 = host("db-01")
    peers = db01.check_output(". /etc/mysql/webinfra-db-role; echo $WEBINFRA_DB_PEERS")
    address = podman("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"{LAB}-db-02")
    db01.check_output("systemctl restart mariadb")
    log = db01.run("journalctl -t webinfra-db-boot-role --no-pager").stdout
    if address.stdout.strip() == peers.strip():
        assert writable("db-01"), log
    else:
        assert not writable("db-01") and "staying read-only" in log, log


def test_site_playbook_repairs_the_stack_and_the_health_report_ends_healthy(tmp_path):
    """The scenario ends healthy: lb-01 is started again and site.yml (the inventory already
    names db-01 the primary) re-seeds db-02 as its replica; the health report then passes."""
    assert podman("start", f"{LAB}-lb-01").returncode == 0
    lb01 = host("lb-01")
    booted = ("running", "degraded")
    assert wait_for(lambda: lb01.run("systemctl is-system-running").stdout.strip() in booted, timeout=90)
    # Restarted containers may get new addresses from podman: Ansible reaches them by the current ones.
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    current = {
        name: podman("inspect", "--format", fmt, f"{LAB}-{name}").stdout.strip()
        for name in inventory()["_meta"]["hostvars"]
    }
    extra = tmp_path / "addresses.yml"
    extra.write_text(json.dumps({"all": {"hosts": {name: {"ansible_host": ip} for name, ip in current.items()}}}))
    proc = run_playbook("site.yml", "-i", str(extra))
    assert proc.returncode == 0, output(proc)[-4000:]
    status = host("db-02").check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")
    assert "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status, status
    proc, result = health(tmp_path, "-i", str(extra))
    print("\n" + "\n".join(result.get("table", [])))
    assert proc.returncode == 0 and result["healthy"], output(proc)[-3000:]
    assert result["vip_holder"] in LBS
