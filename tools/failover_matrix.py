"""The failover fault matrix: one fault on the database leader (or around it) under write load,
through the writer endpoint and straight to every database server, and what it cost.

Shared by the Molecule scenario `faults` (each cell once, `make test`) and `make bench` (each
cell several times). A cell:

1. waits for a healthy cluster (one writable leader, every replica replicating, semi-sync on);
2. starts tools/writeload.py on the client (POST /api/notes through the virtual IP) and
   tools/failover_probe.py on a web server (read_only of every server every 100 ms, a direct
   write to every server every 100 ms, with the application's own account);
3. injects its fault, waits until a writable leader serves writes through the endpoint again
   (or the cell's own end), and lifts the fault;
4. checks, on the server that leads at the end: every acknowledged write (endpoint and direct)
   is there; no two servers were writable in the same 100 ms; the longest stretch without an
   acknowledged write at the client (the write window).

Every command runs through `podman exec` (a frozen host answers at once with an error).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from probes import freeze

TOOLS = Path(__file__).resolve().parent
WRITELOAD = "/usr/local/bin/webinfra-writeload"
PROBE = "/usr/local/bin/webinfra-failover-probe"
CA = "/root/webinfra-ca.pem"


def double_writable(samples: dict, grid: float = 0.1, stale: float = 0.5) -> list[float]:
    """Times (on a `grid`) at which more than one server's latest sample, no older than
    `stale` seconds, read writable. samples: {server: [[time, 1 | 0 | None], ...]}."""
    return coincident(samples, 1, grid, stale)


def down_together(samples: dict, grid: float = 0.1, stale: float = 1.5) -> list[float]:
    """Times at which more than one server did not answer (its latest sample None, or older
    than `stale` seconds: the probe waits up to 1 s for a server that does not answer)."""
    return coincident(samples, None, grid, stale)


def coincident(samples: dict, wanted, grid: float, stale: float) -> list[float]:
    """Times (on a `grid`) at which more than one server's state was `wanted` (a sample older
    than `stale` seconds counts as None: no answer)."""
    series = {name: sorted(points, key=lambda p: p[0]) for name, points in samples.items() if points}
    if not series:
        return []
    start = min(points[0][0] for points in series.values())
    end = max(points[-1][0] for points in series.values())
    index = dict.fromkeys(series, 0)
    out = []
    for step in range(round((end - start) / grid) + 1):
        now = start + step * grid
        count = 0
        for name, points in series.items():
            i = index[name]
            while i + 1 < len(points) and points[i + 1][0] <= now:
                i += 1
            index[name] = i
            stamp, value = points[i]
            if stamp > now:
                continue  # no sample of this server yet
            state = value if now - stamp <= stale else None
            if state == wanted:
                count += 1
        if count > 1:
            out.append(round(now, 2))
    return out


@dataclass
class Cell:
    """What one trial of one fault measured."""

    fault: str
    leader_before: str = ""
    leader_after: str = ""
    window_s: float | None = None
    requests: int = 0
    failed: int = 0
    acked: int = 0
    lost: list = field(default_factory=list)
    direct_acked: int = 0
    direct_lost: list = field(default_factory=list)
    double_writable: list = field(default_factory=list)
    # The old leader was seen read-only during the trial (fenced, or gave the lease up).
    leader_fenced: bool = False
    # Times at which more than one server did not answer.
    down_together: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    # The longest stretch without an acknowledged write, seconds after the fault: [began, ended].
    gap: list | None = None
    # What the HA agents and the balancers' writer endpoint logged from just before the fault to
    # the end of the trial: [seconds after the fault, host, message] - where a window's time went.
    timeline: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        return (
            f"{self.fault}: leader {self.leader_before} -> {self.leader_after}, write window {self.window_s} s"
            f"{f' ({self.gap[0]:+} to {self.gap[1]:+} s)' if self.gap else ''}, "
            f"{self.failed} failed of {self.requests}, {len(self.lost)} of {self.acked} acknowledged writes lost "
            f"(direct: {len(self.direct_lost)} of {self.direct_acked}), {len(self.double_writable)} samples with "
            f"two writable servers{'; ' + '; '.join(self.notes) if self.notes else ''}"
        )


class Matrix:
    """The lab's database hosts (`dbs`), one web server (the probe), the client (the load)."""

    def __init__(  # noqa: PLR0913 - the lab's parts
        self,
        lab: str,
        dbs: list[str],
        web: str,
        client: str,
        vip: str,
        ca_pem: str,
        rebuild=None,
        playbook=None,
        etcd_root_password: str = "",
        balancers: tuple[str, ...] = (),
        etcd_members: tuple[str, ...] = (),
    ):
        self.lab, self.dbs, self.web, self.client, self.vip = lab, list(dbs), web, client, vip
        self.balancers = list(balancers)  # their writer endpoint's log joins each trial's timeline
        self.etcd_members = list(etcd_members or dbs)
        # etcd's root user (role-based access control): faults that change etcd's keys run as it.
        self.etcd_root_password = etcd_root_password
        self.rebuild = rebuild  # callable(host): re-seeds an errant former primary (rebuild.yml)
        self.rebuilds: list[tuple[str, str]] = []  # (host, why) of each rebuild restore() ran
        self.playbook = playbook  # callable(*args): runs site.yml with extra arguments, returns success
        self.addresses = {h: self.sh(h, "hostname -I").stdout.split()[0] for h in {*self.dbs, *self.etcd_members}}
        self.put(self.client, WRITELOAD, (TOOLS / "writeload.py").read_text())
        self.put(self.client, CA, ca_pem)
        self.put(self.web, PROBE, (TOOLS / "failover_probe.py").read_text())

    # plumbing
    def sh(self, host: str, script: str, timeout: float = 30, stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                ["podman", "exec", "-i", f"{self.lab}-{host}", "bash", "-c", script],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", "timed out")

    def podman(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], capture_output=True, text=True, check=False, timeout=60)

    def put(self, host: str, path: str, text: str) -> None:
        proc = self.sh(host, f"cat > {shlex.quote(path)}", stdin=text)
        assert proc.returncode == 0, proc.stderr

    def sql(self, host: str, statement: str, timeout: float = 5) -> str | None:
        proc = self.sh(host, f"timeout {timeout} mariadb -NBe {shlex.quote(statement)}", timeout=timeout + 5)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def status(self, host: str) -> dict:
        read = (
            "import urllib.request, subprocess; a = subprocess.check_output(['hostname', '-I']).split()[0].decode(); "
            "print(urllib.request.urlopen(f'http://{a}:3308/status', timeout=2).read().decode())"
        )
        proc = self.sh(host, f"python3 -c {shlex.quote(read)}", timeout=10)
        try:
            return json.loads(proc.stdout) if proc.returncode == 0 else {}
        except ValueError:
            return {}

    @staticmethod
    def wait(predicate, timeout: float, interval: float = 0.5):
        deadline = time.time() + timeout
        while True:
            result = predicate()
            if result or time.time() > deadline:
                return result
            time.sleep(interval)

    # the cluster
    def writable(self) -> list[str]:
        return [h for h in self.dbs if self.sql(h, "SELECT @@GLOBAL.read_only", timeout=2) == "0"]

    def leader(self) -> str | None:
        leaders = {self.status(h).get("leader") for h in self.dbs} - {None, ""}
        return leaders.pop() if len(leaders) == 1 else None

    def replicating(self, host: str, leader: str) -> bool:
        status = self.sh(host, "mariadb -e 'SHOW SLAVE STATUS\\G'").stdout
        return (
            "Slave_IO_Running: Yes" in status
            and "Slave_SQL_Running: Yes" in status
            and f"Master_Host: {self.addresses[leader]}" in status
        )

    def healthy(self) -> str | None:
        """The leader when the cluster is healthy: it alone is writable and semi-synchronous,
        every other server replicates from it and its agent measured no lag."""
        leader = self.leader()
        if leader is None or self.writable() != [leader]:
            return None
        if not self.status(leader).get("db", {}).get("semisync"):
            return None
        for other in self.dbs:
            if other != leader and not (self.replicating(other, leader) and self.status(other).get("lag") == 0):
                return None
        return leader

    def restore(self, timeout: float = 120) -> str:
        """Back to a healthy cluster: an errant former primary rolls its unacknowledged
        transactions back by itself; one whose agent refused to (`not rolled back`) is rebuilt
        (rebuild.yml), and counted in `rebuilds`."""

        def settled():
            leader = self.healthy()
            if leader and self.etcd_healthy():
                return leader
            for host in self.dbs:
                errant = self.status(host).get("errant") or ""
                if "not rolled back" in errant and self.rebuild is not None:
                    self.rebuilds.append((host, errant))
                    self.rebuild(host)
            return None

        leader = self.wait(settled, timeout, interval=2)
        assert leader, ({h: self.status(h) for h in self.dbs}, self.etcd_healthy())
        return leader

    def etcd_healthy(self) -> bool:
        """Every etcd member answers a linearizable read: it has a raft leader and applied what
        was committed. A member cut off by the last trial can take seconds to rejoin after the cut
        heals (its peer connections back off); a trial started before that would be a second
        fault on top of the first (one more member lost: no quorum)."""
        proc = etcdctl(self, self.etcd_members[0], "endpoint health --cluster -w json")
        try:
            members = json.loads(proc.stdout)
        except ValueError:
            return False
        return len(members) == len(self.etcd_members) and all(m.get("health") for m in members)

    # the loads
    def start(self, name: str) -> None:
        self.sh(self.client, f"rm -f /root/{name}.*")
        self.sh(
            self.client,
            f"nohup python3 {WRITELOAD} --url https://{self.vip}/api/notes --method POST --prefix {name} "
            f"--cafile {CA} --stop-file /root/{name}.stop --ready-file /root/{name}.ready --duration 300 "
            f"> /root/{name}.json 2>/root/{name}.err &",
        )
        servers = " ".join(f"--server {h}={self.addresses[h]}:3306" for h in self.dbs)
        self.sh(self.web, f"rm -f /root/{name}.*")
        self.sh(
            self.web,
            f"nohup python3 {PROBE} {servers} --prefix {name}d --stop-file /root/{name}.stop "
            f"--ready-file /root/{name}.ready > /root/{name}.json 2>/root/{name}.err &",
        )
        for host in (self.client, self.web):
            ready = self.wait(lambda h=host: self.sh(h, f"test -e /root/{name}.ready").returncode == 0, 30)
            assert ready, self.sh(host, f"cat /root/{name}.err").stdout

    def stop(self, name: str) -> tuple[dict, dict]:
        results = []
        for host in (self.client, self.web):
            self.sh(host, f"touch /root/{name}.stop")
        for host in (self.client, self.web):
            assert self.wait(lambda h=host: self.sh(h, f"test -s /root/{name}.json").returncode == 0, 30)
            results.append(json.loads(self.sh(host, f"cat /root/{name}.json").stdout))
        return results[0], results[1]

    def stored(self, host: str, prefix: str) -> set[str]:
        out = self.sql(host, f"SELECT body FROM webapp.notes WHERE body LIKE '{prefix}%'", timeout=20)  # noqa: S608
        return set((out or "").split())

    # one trial
    def run(self, fault: str, inject, heal, settle: float = 4.0, timeout: float = 60) -> Cell:
        """Inject `fault` (inject(leader) -> None) under load, wait for writes through the
        endpoint to succeed on a leader again, `settle` seconds more, then heal(leader)."""
        leader = self.restore()
        cell = Cell(fault=fault, leader_before=leader)
        name = f"fm{int(time.time() * 1000 % 10_000_000)}"
        self.start(name)
        injected = time.time()
        try:
            time.sleep(3)
            injected = time.time()
            inject(leader)
            # Writes acknowledged again after the fault (through the endpoint), by some leader.
            self.wait(lambda: self.writes_since(name, injected + 0.5), timeout)
            time.sleep(settle)
        finally:
            load, probe = self.stop(name)
            heal(leader)
        after = self.wait(self.leader, 60) or ""
        cell.leader_after = after
        cell.window_s, cell.requests, cell.failed = (
            load.get("max_gap_s"),
            load.get("requests", 0),
            load.get("failed", 0),
        )
        cell.acked = len(load.get("acked", []))
        cell.direct_acked = sum(len(v) for v in probe["acked"].values())
        if after:
            stored = self.stored(after, name)
            cell.lost = [b for b in load.get("acked", []) if b not in stored]
            cell.direct_lost = [b for rows in probe["acked"].values() for _t, b in rows if b not in stored]
        else:
            cell.notes.append("no leader after the fault")
        if load.get("max_gap_at"):
            cell.gap = [round(t - injected, 2) for t in load["max_gap_at"]]
        cell.timeline = self.timeline(injected, time.time())
        cell.double_writable = double_writable(probe["samples"])
        cell.leader_fenced = any(value == 0 for _t, value in probe["samples"].get(leader, []))
        cell.down_together = down_together(probe["samples"])
        return cell

    def timeline(self, since: float, until: float, limit: int = 300) -> list:
        """[seconds after `since`, host, message] of the HA agents' journal lines and the balancers'
        writer-endpoint state changes from 2 s before `since` to `until`, the first `limit`."""
        window = f"--since @{int(since) - 2} --until @{int(until) + 1} -o short-unix --no-pager -q"
        sources = [(h, f"journalctl -u webinfra-ha-agent {window}") for h in self.dbs]
        sources += [(h, f"journalctl -u haproxy {window} | grep -F 'Server db_writer/'") for h in self.balancers]
        entries = []
        for host, command in sources:
            for line in self.sh(host, command, timeout=20).stdout.splitlines():
                stamp, rest = (line.split(" ", 1) + [""])[:2]
                try:
                    at = float(stamp)
                except ValueError:
                    continue
                message = rest.split(": ", 1)[-1]
                entries.append([round(at - since, 2), host, message[:200]])
        return sorted(entries)[:limit]

    def writes_since(self, name: str, since: float) -> bool:
        """The client's load acknowledged a write that started after `since` (read from its
        events so far: writeload appends nothing before it stops, so ask the app instead)."""
        leader = self.leader()
        if not leader or self.writable() != [leader]:
            return False
        query = f"SELECT UNIX_TIMESTAMP(MAX(created_at)) FROM webapp.notes WHERE body LIKE '{name}-%'"  # noqa: S608
        newest = self.sql(leader, query)
        try:
            return newest not in (None, "", "NULL") and float(newest) >= since
        except ValueError:
            return False


# Where a trial's write window went, from its timeline: the first line of each kind, in seconds
# after the fault. (phase, who logged it: "old" leader, "new" leader or a "balancer", the text.)
PHASES = (
    ("fenced", "old", "fencing: "),
    ("released", "old", "releasing leadership: "),
    ("took the key", "new", "took the leader key"),
    ("writable", "new", "writable "),
    ("writer endpoint UP", "balancer", "is UP"),
)


def phases(cell: dict) -> dict:
    """{phase: seconds after the fault} of one trial's cell (as saved), the gap's bounds among them."""
    old, new = cell.get("leader_before"), cell.get("leader_after")
    found: dict = {}
    if cell.get("gap"):
        found["gap began"], found["gap ended"] = cell["gap"]
    for at, host, message in cell.get("timeline", []):
        for phase, who, text in PHASES:
            if phase in found or text not in message or at < -0.5:
                continue
            if (who == "old" and host == old) or (who == "new" and host == new):
                found[phase] = at
            elif who == "balancer" and host not in (old, new) and f"db_writer/{new} " in message:
                found[phase] = at
    return dict(sorted(found.items(), key=lambda item: item[1]))


def phase_lines(rows: dict) -> list[str]:
    """One line per trial of a saved matrix (make bench): its window and its phases."""
    lines = []
    for kind, row in rows.items():
        for number, cell in enumerate(row.get("cells", []), start=1):
            steps = ", ".join(f"{name} +{at:.2f}" for name, at in phases(cell).items())
            lines.append(f"{kind} {number}: window {cell.get('window_s')} s; {steps}")
    return lines


# --- the faults ----------------------------------------------------------------------------------

FAULT_TABLE = "webinfra_fault"


def nft(m: Matrix, host: str, rules: str) -> None:
    proc = m.sh(host, "nft -f -", stdin=f"table inet {FAULT_TABLE} {{\n{rules}\n}}\n")
    assert proc.returncode == 0, proc.stderr


def unnft(m: Matrix, host: str) -> None:
    m.sh(host, f"nft delete table inet {FAULT_TABLE} 2>/dev/null || true")


def others(m: Matrix, leader: str) -> list[str]:
    return [h for h in m.dbs if h != leader]


def etcdctl(m: Matrix, host: str, args: str) -> subprocess.CompletedProcess:
    """etcdctl on `host` as etcd's root user (the password on stdin, never in a command line)."""
    tls = "--cacert=/etc/etcd/tls/ca.pem --cert=/etc/etcd/tls/member.pem --key=/etc/etcd/tls/member.key"
    return m.sh(
        host,
        'read -r P; if [ -n "$P" ]; then export ETCDCTL_USER="root:$P"; fi; '
        f"ETCDCTL_API=3 etcdctl --endpoints=https://{m.addresses[host]}:2379 {tls} {args}",
        stdin=m.etcd_root_password + "\n",
    )


def sql_thread(m: Matrix, host: str, running: bool) -> None:
    m.sql(host, "START SLAVE SQL_THREAD" if running else "STOP SLAVE SQL_THREAD")


class Fault:
    """One kind of fault: inject(m, leader) under load (may block while the fault lasts), heal(m,
    leader) after the load stopped; `failover` says whether a new leader is expected."""

    name = ""
    failover = True
    timeout = 60.0

    def inject(self, m: Matrix, leader: str) -> None:
        raise NotImplementedError

    def heal(self, m: Matrix, leader: str) -> None:
        return None


class KillDatabase(Fault):
    name = "SIGKILL of MariaDB on the leader"
    failover = False  # systemd starts it again read-only; the agent promotes it, or a replica takes over

    def inject(self, m, leader):
        m.sh(leader, "systemctl kill --signal=SIGKILL mariadb")


class FreezeHost(Fault):
    name = "leader's host frozen"

    def inject(self, m, leader):
        assert freeze(f"{m.lab}-{leader}").returncode == 0

    def heal(self, m, leader):
        m.podman("unpause", f"{m.lab}-{leader}")


class UnacknowledgedCommits(Fault):
    name = "the leader's replicas stop receiving (its packets to them dropped), commits wait, then its host frozen"
    # The leader's binary log then holds commits no replica received (never acknowledged): the
    # former leader is errant, rolls them back and rejoins by itself (ha/rejoin.py).
    marker = "unacked-marker"

    def inject(self, m, leader):
        # One command on the leader, then its host frozen: its agent stopped first (it would
        # end the connections of replicas silent for 2 s, and then publish that it runs
        # asynchronously: no automatic failover after that, by design), its packets to the
        # replicas dropped, a commit that waits for their acknowledgement.
        peers = ", ".join(m.addresses[h] for h in others(m, leader))
        self.marker = f"unacked-{int(time.time())}"
        insert = f"INSERT INTO webapp.notes (body, written_by) VALUES ('{self.marker}', 'fault-matrix')"  # noqa: S608
        rules = (
            f"table inet {FAULT_TABLE} {{\n  chain out {{ type filter hook output priority -10; "
            f"ip daddr {{ {peers} }} tcp sport 3306 drop; }}\n}}\n"
        )
        script = (
            "systemctl kill --signal=SIGSTOP webinfra-ha-agent; "
            f"printf %s {shlex.quote(rules)} | nft -f - || exit 1; "
            f"(nohup timeout 60 mariadb -e {shlex.quote(insert)} >/dev/null 2>&1 &); sleep 0.3"
        )
        proc = m.sh(leader, script)
        assert proc.returncode == 0, proc.stderr
        assert freeze(f"{m.lab}-{leader}").returncode == 0

    def heal(self, m, leader):
        m.podman("unpause", f"{m.lab}-{leader}")
        unnft(m, leader)
        m.sh(leader, "systemctl kill --signal=SIGCONT webinfra-ha-agent || true")


class FreezeAgent(Fault):
    name = "leader's HA agent frozen (SIGSTOP)"
    failover = False  # fenced by the watchdog in time; the restarted agent may take its lease back

    def inject(self, m, leader):
        m.sh(leader, "systemctl kill --signal=SIGSTOP webinfra-ha-agent")

    def heal(self, m, leader):
        m.sh(leader, "systemctl kill --signal=SIGCONT webinfra-ha-agent || true")


class AsymmetricPartition(Fault):
    name = "leader cut off from etcd and the replicas, not from the balancers"

    def inject(self, m, leader):
        peers = ", ".join(m.addresses[h] for h in others(m, leader))
        nft(
            m,
            leader,
            f"  chain in {{ type filter hook input priority -10; ip saddr {{ {peers} }} drop; }}\n"
            f"  chain out {{ type filter hook output priority -10; ip daddr {{ {peers} }} drop; }}",
        )

    def heal(self, m, leader):
        unnft(m, leader)


class ReplicaAgentsRestarted(Fault):
    name = "leader's host frozen, the replicas' agents restarted during the outage"

    def inject(self, m, leader):
        assert freeze(f"{m.lab}-{leader}").returncode == 0
        for host in others(m, leader):
            m.sh(host, "systemctl restart webinfra-ha-agent")

    def heal(self, m, leader):
        m.podman("unpause", f"{m.lab}-{leader}")


class SlowApplier(Fault):
    name = "one replica applying slowly (SQL thread stopped), then the leader's host frozen"

    def inject(self, m, leader):
        self.slow = others(m, leader)[0]
        sql_thread(m, self.slow, running=False)
        time.sleep(4)  # it receives and acknowledges, and applies nothing
        assert freeze(f"{m.lab}-{leader}").returncode == 0

    def heal(self, m, leader):
        m.podman("unpause", f"{m.lab}-{leader}")
        sql_thread(m, self.slow, running=True)


class EtcdKeyspaceLoss(Fault):
    name = "etcd's keys deleted while a replica applies slowly"
    failover = False  # the sitting leader takes its key back

    def inject(self, m, leader):
        # The inventory's primary when it is a replica now (it bootstrapped the cluster: the
        # server a careless bootstrap would promote), else the first replica.
        self.slow = m.dbs[0] if leader != m.dbs[0] else others(m, leader)[0]
        sql_thread(m, self.slow, running=False)
        time.sleep(3)
        proc = etcdctl(m, self.slow, "del --prefix /webinfra/")
        assert proc.returncode == 0, proc.stderr
        time.sleep(8)  # a lease's length: nobody bootstraps, nobody else takes over

    def heal(self, m, leader):
        sql_thread(m, self.slow, running=True)


class EtcdRecreated(Fault):
    name = "etcd re-created (every member stopped, its data wiped, a new cluster) while a replica applies slowly"
    # etcd's graceful stop (a leadership transfer first) takes ~7 s when every member stops at once:
    # longer than the leader's lease deadline, so it fences; on the new cluster every agent then
    # holds elections for a TTL (the revision went back) and the most advanced candidate takes
    # over - the old leader or a replica, whichever comes first among equals.
    failover = False
    stop = "systemctl stop etcd"

    def inject(self, m, leader):
        self.slow = m.dbs[0] if leader != m.dbs[0] else others(m, leader)[0]
        sql_thread(m, self.slow, running=False)
        time.sleep(3)
        # Every member stopped, its data directory emptied and started again at once: a new cluster
        # (its initial state is `new`), with no keys, no leases, no users and access control off.
        wipe = f'. /etc/default/etcd && {self.stop} && find "$ETCD_DATA_DIR" -mindepth 1 -delete'
        with ThreadPoolExecutor(len(m.etcd_members)) as pool:
            wiped = list(pool.map(lambda h: m.sh(h, wipe, timeout=60), m.etcd_members))
            assert all(p.returncode == 0 for p in wiped), [p.stderr for p in wiped]
            started = list(pool.map(lambda h: m.sh(h, "systemctl start etcd", timeout=90), m.etcd_members))
        assert all(p.returncode == 0 for p in started), [p.stderr for p in started]
        time.sleep(8)  # a lease's length on the new cluster

    def heal(self, m, leader):
        sql_thread(m, self.slow, running=True)
        # The operator's answer to a re-created etcd: site.yml's etcd plays make its users, roles
        # and access control again (until then the agents use it without credentials).
        assert m.playbook is not None, "the matrix needs a playbook runner for this fault"
        m.playbook("site.yml", "--tags", "pki,etcd")


class EtcdRecreatedAtOnce(EtcdRecreated):
    name = "etcd re-created within a second (every member killed, wiped, started) while a replica applies slowly"
    # Back before the leader's deadline: it finds its lease forgotten and takes its key back under
    # a new lease, writable throughout.
    stop = "systemctl kill -s KILL etcd && systemctl stop etcd"


class WriteStall(Fault):
    name = "writes stalled on the leader (a global read lock held)"

    def inject(self, m, leader):
        m.sh(leader, "nohup mariadb -e 'FLUSH TABLES WITH READ LOCK; SELECT SLEEP(40)' >/dev/null 2>&1 &")

    def heal(self, m, leader):
        m.sh(leader, "pkill -f 'SELECT SLEEP(40)' || true")


class LossyEtcdLink(Fault):
    name = "lossy link on the leader (20 % of its packets dropped for 20 s)"
    failover = False

    def inject(self, m, leader):
        nft(
            m,
            leader,
            "  chain in { type filter hook input priority -10; iif != lo numgen random mod 100 < 20 drop; }\n"
            "  chain out { type filter hook output priority -10; oif != lo numgen random mod 100 < 20 drop; }",
        )
        time.sleep(20)
        unnft(m, leader)

    def heal(self, m, leader):
        unnft(m, leader)


class ConfigChange(Fault):
    name = "a configuration change that restarts MariaDB, through site.yml"
    failover = False  # the leader hands the lease over before its restart: a switchover

    def inject(self, m, leader):
        # A setting only a restart applies, different from what the servers run now.
        current = int(m.sql(leader, "SELECT @@GLOBAL.max_connections") or 0)
        assert m.playbook is not None, "the matrix needs a playbook runner for this fault"
        # Every host answers (the bench runs the matrix before it stops a balancer for good).
        # The database role's run, as an operator changes a database setting (the stack model
        # and the preflight run always; pki hands the role its certificates).
        setting = f"mysql_replication_max_connections={current + 1}"
        m.playbook("site.yml", "--tags", "pki,mysql_replication", "-e", setting)


FAULTS = {
    "freeze-host": FreezeHost,
    "unacknowledged-commits": UnacknowledgedCommits,
    "freeze-agent": FreezeAgent,
    "kill-mariadb": KillDatabase,
    "asymmetric-partition": AsymmetricPartition,
    "replica-agents-restarted": ReplicaAgentsRestarted,
    "slow-applier": SlowApplier,
    "etcd-keyspace-loss": EtcdKeyspaceLoss,
    "etcd-recreated": EtcdRecreated,
    "etcd-recreated-at-once": EtcdRecreatedAtOnce,
    "write-stall": WriteStall,
    "lossy-etcd-link": LossyEtcdLink,
    "config-change": ConfigChange,
}


def trial(m: Matrix, kind: str) -> Cell:
    fault = FAULTS[kind]()
    return m.run(
        fault.name, lambda leader: fault.inject(m, leader), lambda leader: fault.heal(m, leader), timeout=fault.timeout
    )


if __name__ == "__main__":
    import sys

    # python3 tools/failover_matrix.py <results>/<time>-matrix.json: where each trial's window went.
    print("\n".join(phase_lines(json.loads(Path(sys.argv[1]).read_text()))))
