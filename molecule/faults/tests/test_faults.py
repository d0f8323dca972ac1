"""The failover fault matrix, each fault once on one converge (tools/failover_matrix.py).

Three database hosts (db-01 the inventory's primary, db-02 and db-03 replicas), each with an
etcd member; the client writes through the virtual IP while the web server samples read_only of
every database server every 100 ms and writes to each one straight with the application's
account. Every cell must lose no acknowledged write (through the endpoint or straight) and never
show two writable servers; the write window is printed (the bounds are `make bench`'s, over
several trials: docs/HA.md), and bounded here only loosely. A former primary left with
transactions no replica received rolls them back and rejoins by itself (unacknowledged-commits
makes sure of one); only one whose agent refused to is rebuilt (rebuild.yml) before the next
cell.
"""

import json

import pytest
from failover_matrix import FAULTS, Matrix, etcdctl, trial
from labhosts import ca_certificate, etcd_root_password, groups, host, hostvars, playbook_digest, run_playbook

CLIENT = groups()["clients"][0]
LAB = hostvars(CLIENT)["webinfra_lab_name"]
DBS = groups()["db_primary"] + groups()["db_replicas"]
WEB = groups()["webservers"][0]
RESULTS = []
# Generous: a loaded CI machine; the medians and worst cases that count are make bench's.
WINDOW_BOUND = 30


def vip():
    conf = host("lb-01").file("/etc/keepalived/keepalived.conf").content_string
    return conf.split("virtual_ipaddress {", 1)[1].split()[0].split("/")[0]


def rebuild(name):
    proc = run_playbook("playbooks/rebuild.yml", "-e", f"host={name}")
    assert proc.returncode == 0, playbook_digest(proc)


def playbook(*args):
    proc = run_playbook(*args)
    assert proc.returncode == 0, playbook_digest(proc)


@pytest.fixture(scope="module")
def matrix():
    m = Matrix(
        LAB,
        DBS,
        WEB,
        CLIENT,
        vip(),
        ca_certificate(),
        rebuild=rebuild,
        playbook=playbook,
        etcd_root_password=etcd_root_password(),
        balancers=tuple(groups()["loadbalancers"]),
    )
    yield m
    print("\nFault matrix (one trial each):")
    for cell in RESULTS:
        print("  " + cell.summary())
    print(json.dumps([c.as_dict() for c in RESULTS]))


def test_three_database_hosts_one_writable_leader(matrix):
    leader = matrix.restore()
    assert leader == "db-01" and matrix.writable() == ["db-01"]
    for other in ("db-02", "db-03"):
        assert matrix.replicating(other, "db-01")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("mysql_replication_ha_cluster=renamed", "mysql_replication_ha_cluster is 'renamed', but the HA agent on"),
        (
            "mysql_replication_ha_ttl=6",
            "must be at least 3 x mysql_replication_ha_loop_wait + 2 s (5.0 s) and at least 7",
        ),
        ("haproxy_db_writer_check_timeout=3s", "needs up to 7.25 s to mark a frozen primary DOWN"),
    ],
)
def test_bad_failover_settings_are_refused_before_any_change(matrix, extra, message):
    """A renamed cluster prefix on a running stack, a TTL a hung agent's fence does not fit in,
    a writer check slower than the lease: refused in preflight, naming the setting."""
    proc = run_playbook("site.yml", "--tags", "preflight", "-e", extra)
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and message in text, text[-3000:]
    assert matrix.writable() == [matrix.leader()]


# Order: faults that leave every server as it was first, the ones that may leave an errant
# former primary (a frozen host) after; the keyspace loss once the inventory's primary is a
# replica (the write stall moved the lease), so that it is the lagging one.
ORDER = [
    "lossy-etcd-link",
    "freeze-agent",
    "write-stall",
    "etcd-keyspace-loss",
    "etcd-recreated-at-once",
    "etcd-recreated",
    "config-change",
    "kill-mariadb",
    "asymmetric-partition",
    "slow-applier",
    "replica-agents-restarted",
    "unacknowledged-commits",
]


@pytest.mark.parametrize("kind", ORDER)
def test_fault(matrix, kind):
    cell = trial(matrix, kind)
    RESULTS.append(cell)
    print("\n" + cell.summary())
    assert cell.leader_after, cell.summary()
    assert cell.lost == [], f"{len(cell.lost)} acknowledged writes lost: {cell.lost[:10]}"
    assert cell.direct_lost == [], f"{len(cell.direct_lost)} direct writes lost: {cell.direct_lost[:10]}"
    assert cell.double_writable == [], cell.summary()
    # One server down at a time at most (a configuration change restarts them one by one).
    assert cell.down_together == [], (cell.down_together[:10], cell.summary())
    assert cell.window_s is not None and cell.window_s < WINDOW_BOUND, cell.summary()
    if FAULTS[kind].failover:
        assert cell.leader_after != cell.leader_before, cell.summary()
    if kind == "lossy-etcd-link":
        # Persistent connections and the retry budget: no fence, no failover, no flapping.
        assert cell.leader_after == cell.leader_before and not cell.leader_fenced, cell.summary()
    if kind == "config-change":
        restarts = {h: matrix.sql(h, "SELECT @@GLOBAL.max_connections") for h in DBS}
        assert len(set(restarts.values())) == 1, restarts  # every server restarted with the new setting
    if kind == "unacknowledged-commits":
        # The former leader rolls back the commits no replica received (saved for audit) and
        # replicates from the new leader by itself: no rebuild.yml.
        old, new = cell.leader_before, cell.leader_after
        # (Nothing here runs rebuild.yml: only Matrix.restore does, before a cell.)
        rejoined = matrix.wait(lambda: matrix.replicating(old, new) and not matrix.status(old).get("errant"), 60)
        assert rejoined, matrix.status(old)
        journal = matrix.sh(old, "journalctl -u webinfra-ha-agent --no-pager | grep 'rejoined: rolled back'")
        assert journal.returncode == 0, journal.stdout
        assert matrix.sql(old, "SELECT COUNT(*) FROM webapp.notes WHERE body LIKE 'unacked-%'") == "0"
        audit = matrix.sh(old, 'grep -l "\'unacked-" /var/lib/webinfra-ha-agent/errant/*/errant-events.txt')
        assert audit.returncode == 0, audit.stderr
    if kind == "etcd-keyspace-loss":
        # The sitting leader took its key back: the lagging bootstrap server never bootstrapped.
        assert cell.leader_after == cell.leader_before, cell.summary()
    if kind == "etcd-recreated-at-once":
        # Back before its deadline: the leader kept writing and took its key back under a new lease.
        assert cell.leader_after == cell.leader_before and not cell.leader_fenced, cell.summary()
    if kind.startswith("etcd-recreated"):
        # site.yml's etcd plays made the users and roles again and turned access control on; the
        # agents authenticate again and the cluster is healthy on the new etcd.
        status = etcdctl(matrix, matrix.etcd_members[0], "auth status")
        assert "Authentication Status: true" in status.stdout, (status.stdout, status.stderr)
        assert matrix.restore() == cell.leader_after
