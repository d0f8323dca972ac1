"""High availability under bounded load from the client host: the balancer pair's virtual IP,
automatic database failover by the HA agents (leader lease in etcd), self-fencing, and a
planned switchover through the agents.

Order matters (pytest runs the file top to bottom): bad input first (nothing changes), then
the balancer failover (lb-01 stays stopped; lb-02 serves the rest), the primary db-01 frozen
(podman pause: it answers nothing, like a dead host, and keeps its address - podman gives a
restarted container a new one) until db-02 takes over by itself, db-01 resumed (it fences
itself at once and rejoins as a replica), site.yml with the unchanged inventory (db-02 stays
the leader), a switchover back to db-01 through the agents, then db-02 rebuilt from the backup
taken before the failovers and a restore drill, both replaying every leader's archived binary
logs. A sampler reads read_only on both database hosts every 200 ms during the failure
tests: never two writable.
Measured windows are printed (pytest -s / the Molecule log) and bounded only loosely here.
"""

import json
import subprocess
import time
from pathlib import Path

import pytest
import repository
from labhosts import (
    PROJECT,
    ca_certificate,
    groups,
    host,
    hostvars,
    http_get,
    http_json,
    inventory,
    playbook_digest,
    run_playbook,
    sql,
    wait_for,
)
from probes import ReadOnlySampler, Shell, agent_status, freeze, haproxy_servers, vip_holder

LBS = groups()["loadbalancers"]
CLIENT = groups()["clients"][0]
BACKUP = groups()["backups"][0]
LAB = hostvars(CLIENT)["webinfra_lab_name"]
SHELL = Shell(LAB)
DBS = ["db-01", "db-02"]
TOOL = "/usr/local/bin/webinfra-writeload"
# Shared between the tests that run in order: the inventory of the current addresses.
STATE = {}
CA = "/root/webinfra-ca.pem"


def vip():
    conf = host("lb-02").file("/etc/keepalived/keepalived.conf").content_string
    return conf.split("virtual_ipaddress {", 1)[1].split()[0].split("/")[0]


VIP = vip()


def holder():
    """The balancer holding the virtual IP, or None (through podman: a restarted balancer has a
    new address that the test inventory does not know)."""
    return vip_holder(SHELL, LBS, VIP)


@pytest.fixture(scope="module")
def client():
    c = host(CLIENT)
    source = (Path(PROJECT) / "tools" / "writeload.py").read_text()
    c.check_output("printf '%%s' %s > %s", source, TOOL)
    c.check_output("printf '%%s' %s > %s", ca_certificate(), CA)
    return c


class Load:
    """writeload.py running on the client against the virtual IP until stopped: two threads, each
    pausing 0.1 s after a request (at most about 20 a second), so that the load leaves the test
    machine's CPUs to the failovers and playbooks it measures; make bench's trials go faster."""

    def __init__(self, client, method, path, name):
        self.client, self.method, self.path, self.name = client, method, path, name

    def __enter__(self):
        n = self.name
        self.client.run(f"rm -f /root/{n}.stop /root/{n}.ready /root/{n}.json")
        self.client.run(
            f"nohup python3 {TOOL} --url https://{VIP}{self.path} --method {self.method} --prefix {n} "
            f"--cafile {CA} --stop-file /root/{n}.stop --ready-file /root/{n}.ready --duration 300 --interval 0.1 "
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


def post_note(client, body):
    """HTTP status of one note written through the virtual IP (any answer, JSON or not)."""
    payload = json.dumps({"body": body})
    return http_get(client, f"https://{VIP}/api/notes", {"Content-Type": "application/json"}, payload)["status"]


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


def proxy_servers(proxy):
    """{server: status} of one proxy on the balancer holding the virtual IP."""
    return haproxy_servers(SHELL, holder(), proxy)


def writer_servers():
    return proxy_servers("db_writer")


def test_the_pair_shares_one_virtual_ip_and_the_writer_endpoint_follows_the_primary():
    assert holder() == "lb-01"  # highest priority
    assert writer_servers() == {"db-01": "UP", "db-02": "DOWN"}
    conf = host("lb-02").file("/etc/keepalived/keepalived.conf").content_string
    assert "unicast_peer" in conf and "vrrp_script haproxy_health" in conf
    # The application writes through the endpoint: its responses name the database host.
    status, body = http_json(host(CLIENT), f"https://{VIP}/api/notes", {"body": "through the writer endpoint"})
    assert status == 201, body


@pytest.mark.parametrize("name", ["lb-01", "lb-02"])
def test_the_writer_endpoint_listens_on_the_private_address_and_the_virtual_ip_only(name):
    """Never on every address of a balancer; the backup balancer listens on the virtual IP before
    it holds it (bound with `transparent`), so it answers at once after a failover."""
    port = hostvars(name).get("haproxy_db_writer_port", 3307)
    listening = {line.split()[3] for line in host(name).check_output("ss -Hltn 'sport = :%s'", str(port)).splitlines()}
    private = host(name).interface("eth0").addresses[0]
    assert listening == {f"{private}:{port}", f"{VIP}:{port}"}


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


def test_the_operations_playbooks_still_read_the_stack_model_with_a_balancer_down():
    """Every operations playbook computes the stack model first (playbooks/model.yml): a host that
    does not answer (lb-01, stopped above) is listed, not fatal, and the playbook goes on to its
    own checks - here switchover.yml refuses a target that already leads, with nothing changed."""
    proc = run_playbook("playbooks/switchover.yml", "-e", "new_primary=db-01")
    text = " ".join(output(proc).split())
    assert proc.returncode != 0 and "switchover refused, nothing changed: db-01 is already the primary" in text, text[
        -3000:
    ]
    # The stopped host fails nothing in the model play: only the refusal fails the run.
    recap = proc.stdout.split("PLAY RECAP", 1)[1]
    lb01 = next(line for line in recap.splitlines() if line.startswith("lb-01"))
    assert "failed=0" in lb01 and "unreachable=0" in lb01, recap
    assert writable("db-01") and not writable("db-02")


def journal_since(name, since):
    """What the host's HA agent and its systemd logged since `since` (a failed bound's context)."""
    proc = podman(
        "exec",
        f"{LAB}-{name}",
        "journalctl",
        "--no-pager",
        "-o",
        "short-precise",
        f"--since=@{since:.0f}",
        "-u",
        "webinfra-ha-agent",
        "-u",
        "mariadb",
    )
    return proc.stdout[-4000:]


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
    first = endpoints.split(",", maxsplit=1)[0]
    refused = web.run(f"ETCDCTL_API=3 etcdctl --endpoints={first} --cacert=/etc/etcd/tls/ca.pem get /x")
    assert refused.rc != 0
    assert agent_status(SHELL, "db-02")["leader"] == "db-01"


def pexec(name, *cmd, timeout=20):
    """A command on a host through podman (works while the host's network is cut)."""
    return subprocess.run(
        ["podman", "exec", f"{LAB}-{name}", *cmd], capture_output=True, text=True, timeout=timeout, check=False
    )


def cut(name):
    """Cut `name` off from every other host (nftables, both directions; loopback stays)."""
    rules = (
        "table inet webinfra_cut {\n"
        "  chain in { type filter hook input priority -10; policy drop; iif lo accept; }\n"
        "  chain out { type filter hook output priority -10; policy drop; oif lo accept; }\n"
        "}\n"
    )
    proc = subprocess.run(
        ["podman", "exec", "-i", f"{LAB}-{name}", "nft", "-f", "-"],
        input=rules,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def heal(name):
    assert pexec(name, "nft", "delete table inet webinfra_cut").returncode == 0


def metric(name, metric_name):
    """A metric of the host's HA agent, read on the host itself."""
    read = (
        "import urllib.request, subprocess; a = subprocess.check_output(['hostname', '-I']).split()[0].decode(); "
        "print(urllib.request.urlopen(f'http://{a}:3308/metrics', timeout=2).read().decode())"
    )
    text = pexec(name, "python3", "-c", read).stdout
    return next((float(line.split()[1]) for line in text.splitlines() if line.startswith(metric_name + " ")), None)


def pstatus(name):
    read = (
        "import urllib.request, subprocess; a = subprocess.check_output(['hostname', '-I']).split()[0].decode(); "
        "print(urllib.request.urlopen(f'http://{a}:3308/status', timeout=2).read().decode())"
    )
    proc = pexec(name, "python3", "-c", read)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def synchronous(leader, replica):
    """The leader runs semi-synchronously and the replica's agent measured no lag behind the
    leader's published position. Right after a replica reconnects, the server may show a
    Seconds_Behind_Master of the binlog's age until it catches up: a leader frozen in that moment
    is rightly not replaced (its replica's lag is unknown), which is not what these tests test."""
    return bool(pstatus(leader).get("db", {}).get("semisync")) and pstatus(replica).get("lag") == 0


def test_a_frozen_read_replica_leaves_every_web_server_serving(client):
    """The web servers read from db-02 (the first replica). Frozen, it accepts connections and
    answers nothing: the application's health answer must not wait for it (the balancer would
    take every web server out), and reads go to the writer endpoint until it answers again."""
    webs = groups()["webservers"]
    states = []
    with Load(client, "GET", "/api/notes", "rr") as load:
        wait_for(lambda: False, timeout=2)
        assert freeze(f"{LAB}-db-02").returncode == 0
        try:
            for _sample in range(8):
                states.append(proxy_servers("webservers"))
                wait_for(lambda: False, timeout=2)
            during = http_get(client, f"https://{VIP}/api/notes")
        finally:
            assert podman("unpause", f"{LAB}-db-02").returncode == 0
        result = load.stop()
    report("Read replica frozen for 16 s (GET /api/notes)", result)
    print(f"web servers on the balancer while frozen: {states}")
    assert all(state == dict.fromkeys(webs, "UP") for state in states), states
    assert during["status"] == 200 and during["headers"].get("x-db-read-fallback") == "writer", during
    assert during["headers"]["x-db-host"] == "db-01", during
    assert result["requests"] > 0 and result["failed"] == 0, result["errors"]
    # Back: reads return to the replica; the replica catches up and runs semi-synchronously
    # again before the failover tests start.
    assert wait_for(lambda: replicates_from("db-02", "db-01"), timeout=40)
    assert wait_for(lambda: synchronous("db-01", "db-02"), timeout=60), (pstatus("db-01"), pstatus("db-02"))
    assert wait_for(
        lambda: http_get(client, f"https://{VIP}/api/notes")["headers"].get("x-db-host") == "db-02", timeout=20
    )
    assert post_note(client, "after the frozen replica") == 201


def test_a_backup_before_the_failovers():
    """The restore drill at the end replays the archive from this backup across every failover
    and switchover below (each leader's binary log, as the archive followed the lease)."""
    STATE["backup_before"] = repository.take_backup(BACKUP)["id"]


def test_automatic_failover_when_the_primary_freezes(client):
    """(a) The primary's host stops answering (frozen): db-02 takes over with no human action."""
    with ReadOnlySampler(SHELL, DBS) as sampler, Load(client, "POST", "/api/notes", "fo") as load:
        wait_for(lambda: False, timeout=3)
        frozen_at = time.time()
        assert freeze(f"{LAB}-db-01").returncode == 0
        assert wait_for(lambda: sampler.first("db-02", True) is not None, timeout=60), sampler.samples[-5:]
        assert wait_for(lambda: writer_servers().get("db-02") == "UP", timeout=15)
        wait_for(lambda: False, timeout=4)
        result = load.stop()
    STATE["failover_at"] = time.time()
    report("Automatic failover (writes, primary frozen)", result)
    print(f"db-02 writable {sampler.first('db-02', True) - frozen_at:.1f} s after db-01 froze")
    assert sampler.double_writable() == []
    lost = lost_writes(result, "db-02", "fo")
    assert result["acked"] and lost == [], f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    assert pstatus("db-02")["leader"] == "db-02"


# A frozen host resumes with its server as it was: writable, until its agent's lease guard
# (every 0.1 s) fences it. Nothing on a frozen host can act earlier (Patroni needs a watchdog
# that resets the host for that); the writer endpoint keeps it out meanwhile (its check has had
# it DOWN since the freeze) and the agent answers /primary with 503 from the first request.
RESUMED_WRITABLE_BOUND = 1.0


def test_the_resumed_old_primary_fences_itself_and_rejoins_as_a_replica():
    """The resumed db-01 turns read-only within RESUMED_WRITABLE_BOUND of resuming (measured,
    printed) and replicates from db-02. A transaction that db-01 had written to its binary log but
    not yet sent when it froze (never acknowledged to its client: semi-sync) is on db-01 only: its
    agent then reports it errant and keeps it out, and the runbook's answer, rebuild.yml, makes it
    a replica again."""
    with ReadOnlySampler(SHELL, DBS) as sampler:
        resumed_at = time.time()
        assert podman("unpause", f"{LAB}-db-01").returncode == 0
        assert wait_for(lambda: sampler.first("db-01", False) is not None, timeout=20), sampler.samples[-5:]
        rejoined = wait_for(
            lambda: replicates_from("db-01", "db-02") or bool(pstatus("db-01").get("errant")), timeout=30
        )
        assert rejoined, pstatus("db-01")
        errant = "" if replicates_from("db-01", "db-02") else pstatus("db-01").get("errant")
        if errant:
            print(f"\ndb-01 held a transaction db-02 never received ({errant}): rebuild.yml")
            assert writer_servers().get("db-01") == "DOWN"
            proc = run_playbook("playbooks/rebuild.yml", "-e", "host=db-01")
            assert proc.returncode == 0, playbook_digest(proc)
            assert wait_for(lambda: replicates_from("db-01", "db-02"), timeout=60), pstatus("db-01")
    after = [round(t - resumed_at, 2) for t in sampler.double_writable()]
    print(f"\ndb-01 read-only {sampler.first('db-01', False) - resumed_at:.2f} s after it resumed; samples with")
    print(f"two writable servers, seconds after the resume: {after}")
    assert all(t <= RESUMED_WRITABLE_BOUND for t in after), (after, journal_since("db-01", resumed_at - 2))
    assert writable("db-02") and not writable("db-01")
    assert writer_servers().get("db-01") == "DOWN"


def test_a_second_failure_inside_the_failover_window_waits_and_alerts():
    """(d) The new leader freezes too, inside mysql_replication_ha_failover_window: db-01 does
    not take over (blocked, exported for the alert) until the window has passed."""
    window = int(hostvars("db-01")["mysql_replication_ha_failover_window"])
    # A leader whose replica has not caught up runs asynchronously and is never replaced
    # automatically: freeze it once it is synchronous again.
    assert wait_for(lambda: synchronous("db-02", "db-01"), timeout=30), (pstatus("db-02"), pstatus("db-01"))
    left = STATE["failover_at"] + window - time.time()
    assert left > 20, f"only {left:.0f} s of the failover window left before the freeze: raise it"
    assert freeze(f"{LAB}-db-02").returncode == 0
    try:
        assert wait_for(lambda: metric("db-01", "webinfra_ha_failover_blocked") == 1, timeout=30), pstatus("db-01")
        assert "failover happened" in pstatus("db-01").get("blocked", "")
        assert not writable("db-01")
        remaining = STATE["failover_at"] + window - time.time()
        assert remaining > 0, "the test took longer than the window"
        # After the window db-01 takes over by itself.
        assert wait_for(lambda: writable("db-01"), timeout=remaining + 30)
    finally:
        assert podman("unpause", f"{LAB}-db-02").returncode == 0
    STATE["failover_at"] = time.time()
    assert wait_for(lambda: replicates_from("db-02", "db-01"), timeout=40)
    assert not writable("db-02")


def test_a_primary_cut_off_from_every_host_fences_itself_before_a_new_leader_is_writable(client):
    """(b) db-01 (leader) is cut off by nftables: it turns read-only by itself before db-02
    becomes writable; after the cut heals it rejoins as a replica."""
    window = int(hostvars("db-01")["mysql_replication_ha_failover_window"])
    wait_for(lambda: False, timeout=max(0, STATE["failover_at"] + window + 1 - time.time()))
    # Only a leader whose replica acknowledges (semi-sync) is replaced automatically.
    assert wait_for(lambda: synchronous("db-01", "db-02"), timeout=30), (pstatus("db-01"), pstatus("db-02"))
    with ReadOnlySampler(SHELL, DBS) as sampler:
        cut_at = time.time()
        cut("db-01")
        try:
            assert wait_for(lambda: sampler.first("db-02", True) is not None, timeout=60), sampler.samples[-5:]
        finally:
            heal("db-01")
        assert wait_for(lambda: replicates_from("db-01", "db-02"), timeout=40)
    STATE["failover_at"] = time.time()
    fenced, promoted = sampler.first("db-01", False), sampler.first("db-02", True)
    print(f"\nCut primary: db-01 read-only {fenced - cut_at:.1f} s, db-02 writable {promoted - cut_at:.1f} s later")
    assert fenced < promoted
    assert sampler.double_writable() == []


def test_site_playbook_with_the_original_inventory_keeps_the_leader(tmp_path):
    """(f) lb-01 is started again; site.yml runs with the inventory still naming db-01 the
    primary: db-02 stays the only writable server and leader; a re-run reports changed=0."""
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
    assert proc.returncode == 0, "first run: " + playbook_digest(proc)
    assert writable("db-02") and not writable("db-01")
    assert replicates_from("db-01", "db-02")
    # The first run took lb-01's new address into the firewall rules; a second run changes nothing.
    proc = run_playbook("site.yml", "-i", str(extra))
    assert proc.returncode == 0, "second run: " + playbook_digest(proc)
    recap = proc.stdout.split("PLAY RECAP", 1)[1]
    changed = [line for line in recap.splitlines() if "changed=" in line and "changed=0" not in line]
    assert changed == [], "second run: " + playbook_digest(proc)
    assert writable("db-02") and not writable("db-01")
    assert pstatus("db-02")["leader"] == "db-02"
    STATE["inventory"] = extra


def test_a_replica_cut_off_causes_no_failover(client):
    """(c) The replica db-01 is cut off for longer than the lease, under write load: the leader
    stays; its commits wait for the semi-sync timeout, then go on; it ends the replica's silent
    dump thread (MariaDB can hang every new connection when a replica reconnects while that
    thread lingers), and after the cut heals the replica catches up and writes still work."""
    cut_before = metric("db-02", "webinfra_ha_silent_replicas_cut_total")
    with ReadOnlySampler(SHELL, DBS) as sampler, Load(client, "POST", "/api/notes", "rc") as load:
        wait_for(lambda: False, timeout=2)
        cut("db-01")
        try:
            wait_for(lambda: False, timeout=15)
        finally:
            heal("db-01")
        assert wait_for(lambda: replicates_from("db-01", "db-02"), timeout=40)
        caught_up = time.time()
        wait_for(lambda: False, timeout=5)
        result = load.stop()
    report("Replica cut off for 15 s (writes)", result)
    assert sampler.first("db-02", False) is None, "the leader was read-only at some point"
    assert sampler.first("db-01", True) is None
    assert pstatus("db-02")["leader"] == "db-02"
    assert metric("db-02", "webinfra_ha_silent_replicas_cut_total") > cut_before
    # Writes go on after the cut healed (they stopped for good when MariaDB hung).
    assert result["last_failure"] is None or result["last_failure"] < caught_up, result
    assert post_note(client, "after the cut") == 201
    lost = lost_writes(result, "db-02", "rc")
    assert result["acked"] and lost == [], f"{len(lost)} acknowledged writes lost: {lost[:10]}"


def test_one_etcd_member_stopped_leaves_writes_unaffected(client):
    """(g) web-01's etcd member stops: the quorum (2 of 3) holds the lease, writes go on."""

    # After the replica's silent cut (c) the leader's commits waited for the semi-sync timeout
    # (12 s with the agent) and sessions piled up: start from a working write path.
    assert wait_for(lambda: post_note(client, "before etcd1") == 201, timeout=60, interval=2)
    with Load(client, "POST", "/api/notes", "etcd1") as load:
        wait_for(lambda: False, timeout=2)
        host("web-01").check_output("systemctl stop etcd")
        try:
            wait_for(lambda: False, timeout=15)
        finally:
            host("web-01").check_output("systemctl start etcd")
        result = load.stop()
    report("One etcd member stopped (writes)", result)
    assert result["failed"] == 0 and result["max_gap_s"] < 3, result["errors"]
    assert writable("db-02")


def test_etcd_losing_its_quorum_makes_the_leader_fence_itself_until_it_returns(client):
    """(h) Two of three etcd members stop: the leader cannot renew its lease and turns read-only
    (no server is writable without a quorum - Patroni's default). When the quorum returns the
    same leader takes its lease back and writes resume."""
    with ReadOnlySampler(SHELL, DBS) as sampler:
        for name in ("web-01", "db-01"):
            pexec(name, "systemctl", "stop", "etcd")
        stopped = time.time()
        try:
            assert wait_for(lambda: sampler.first("db-02", False) is not None, timeout=30)
        finally:
            for name in ("web-01", "db-01"):
                pexec(name, "systemctl", "start", "etcd")
        assert wait_for(lambda: writable("db-02"), timeout=60)
    print(f"\nQuorum lost: db-02 read-only {sampler.first('db-02', False) - stopped:.1f} s after")
    assert sampler.double_writable() == [] and not writable("db-01")
    assert pstatus("db-02")["leader"] == "db-02"


def test_switchover_back_through_the_agents_loses_no_acknowledged_write(client, tmp_path):
    with ReadOnlySampler(SHELL, DBS) as sampler, Load(client, "POST", "/api/notes", "sw") as load:
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


def test_a_rebuild_from_the_backup_before_the_failovers_replays_every_leader(client):
    """A failover, then a backup-based rebuild: db-02 (a replica again) is rebuilt from the backup
    taken before the failovers - the newest one - and the archived binary logs of every leader
    since, replayed by GTID per server; it then replicates from db-01 from the position the
    replay reached and holds the primary's table checksums. A replay that skipped a successor's
    transactions, or applied a former primary's never-acknowledged tail, would leave the
    checksums apart or replication broken."""
    assert repository.backups(BACKUP)[-1]["id"] == STATE["backup_before"], repository.backups(BACKUP)
    post_note(client, "before the rebuild")
    proc = run_playbook(
        "playbooks/rebuild.yml", "-e", "host=db-02", "-e", "rebuild_source=backup", "-i", str(STATE["inventory"])
    )
    assert proc.returncode == 0, playbook_digest(proc)
    result = json.loads(host("db-02").file("/var/lib/webinfra-rebuild.json").content_string)
    print(
        f"\ndb-02 rebuilt from backup {result['backup']} in {result['duration']} s: "
        f"{len(result['binlogs_replayed'])} archived binary logs replayed, position {result['gtid']}"
    )
    assert result["backup"] == STATE["backup_before"] and len(result["binlogs_replayed"]) >= 2, result
    assert wait_for(lambda: replicates_from("db-02", "db-01"), timeout=60), pstatus("db-02")
    target = sql("db-01", "SELECT @@GLOBAL.gtid_binlog_pos").strip()
    assert sql("db-02", f"SELECT MASTER_GTID_WAIT('{target}', 60)").strip() == "0"
    checksum = "CHECKSUM TABLE webapp.notes EXTENDED"
    assert sql("db-02", checksum).split("\t")[1] == sql("db-01", checksum).split("\t")[1]
    assert wait_for(lambda: synchronous("db-01", "db-02"), timeout=60), (pstatus("db-01"), pstatus("db-02"))
    assert post_note(client, "after the rebuild") == 201


def test_a_point_in_time_restore_across_the_failovers_matches_the_newest_backup():
    """A failover, then a point-in-time restore: the backup taken before the failovers, with the
    archived binary logs of every leader since replayed to the newest backup's position (the
    former primary's part only as far as its successor's history goes), holds the same tables
    (checksums) as the newest backup restored - the restore drill, on the backup host."""
    newest = repository.take_backup(BACKUP)
    rc, result, _metrics = repository.drill(BACKUP)
    journal = host(BACKUP).run("journalctl -u webinfra-restore-drill -n 30 --no-pager").stdout
    assert rc == 0 and result["ok"], (result, journal)
    assert result["backup"] == newest["id"] and result["compared_with"] >= STATE["backup_before"], result
    assert result["binlogs_replayed"] >= 2 and result["tables"] >= 1 and not result["mismatches"], result
    # The archive followed more than one server: the replay crossed a change of leader.
    servers = host(BACKUP).check_output(f"ls {repository.REPO}/binlog").split()
    assert len(servers) >= 2, servers
    print(f"\nrestore drill across the failovers: {result['binlogs_replayed']} binary logs from {servers}")
