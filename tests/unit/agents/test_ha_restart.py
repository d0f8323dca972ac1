from webinfra_agents.ha.restart import Restart, settled

CFG = {"name": "db-01", "members": ["db-01", "db-02", "db-03"], "control_socket": "/x", "service": "mariadb"}
REPLICA = {
    "role": "replica",
    "leader": "db-02",
    "lag": 0,
    "db": {"ok": True, "read_only": True, "replica": {"io_running": True, "sql_running": True}},
}


class Fake:
    """The local agent as the command sees it: a status that changes with requests and restarts."""

    def __init__(self, status, refuse=()):
        self.current, self.refuse, self.calls, self.now = status, set(refuse), [], 0.0

    def status(self):
        return self.current

    def request(self, path, body):
        self.calls.append((path, body["to"]))
        if body["to"] in self.refuse:
            return 202, {}  # accepted, then refused by the leader: the lease never moves
        self.current = dict(REPLICA, leader=body["to"])
        return 202, {}

    def systemctl(self, *args):
        self.calls.append(args)
        self.current = dict(REPLICA, leader=self.current.get("leader"))
        return 0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def restart(fake):
    return Restart(CFG, fake.status, fake.request, fake.systemctl, fake.clock, fake.sleep)


def test_a_replica_is_restarted_and_waited_for():
    fake = Fake(dict(REPLICA))
    code, out = restart(fake).run(60)
    assert code == 0 and out["restarted"] and out["switched_over_to"] is None
    assert fake.calls == [("restart", "mariadb")]


LEADER = {"role": "primary", "leader": "db-01", "db": {"ok": True, "read_only": False}, "replicas_healthy": ["db-02"]}


def test_the_leader_hands_over_first_to_the_first_member_that_takes_it():
    leader = dict(LEADER)
    fake = Fake(leader, refuse={"db-02"})
    code, out = restart(fake).run(60)
    assert code == 0 and out["switched_over_to"] == "db-03"
    assert fake.calls == [("/switchover", "db-02"), ("/switchover", "db-03"), ("restart", "mariadb")]


def test_a_leader_nobody_takes_over_from_is_not_restarted():
    leader = dict(LEADER)
    fake = Fake(leader, refuse={"db-02", "db-03"})
    code, out = restart(fake).run(60)
    assert code == 1 and not out["restarted"] and "no other member took the lease" in out["error"]
    assert ("restart", "mariadb") not in fake.calls


def test_settled_needs_replication_without_lag():
    assert settled(REPLICA)
    assert not settled(dict(REPLICA, lag=3))
    assert not settled(None)
    assert settled({"role": "primary", "db": {"ok": True}})


def test_an_errant_server_is_restarted_and_reported_not_waited_for():
    errant = dict(REPLICA, errant="0-1-9 not on the leader", db={"ok": True, "read_only": True, "replica": {}})
    fake = Fake(errant)
    fake.systemctl = lambda *args: 0
    code, out = restart(fake).run(60)
    assert code == 0 and "rebuild.yml" in out["errant"]


def test_a_leader_without_any_healthy_replica_is_restarted_in_place():
    """A cluster being built (its replicas not seeded yet): nobody could take over anyway."""
    fake = Fake(dict(LEADER, replicas_healthy=[]))
    fake.systemctl = lambda *args: fake.calls.append(args) or 0
    code, out = restart(fake).run(60)
    assert code == 0 and out["restarted"] and "no healthy replica" in out["in_place"]
    assert fake.calls == [("restart", "mariadb")]


class FakeReplica:
    """The local server's replication, as the drain sees it: received ahead of applied until
    the SQL thread catches up (after `catch_up` polls)."""

    def __init__(self, replicating=True, catch_up=2):
        self.replicating, self.catch_up, self.stopped, self.polls = replicating, catch_up, False, 0

    def stop_io(self):
        self.stopped = self.replicating
        return self.replicating

    def positions(self):
        self.polls += 1
        applied = "0-2-100" if self.polls > self.catch_up else "0-2-97"
        return "0-2-100", applied


def test_a_replica_applies_what_it_received_before_its_restart():
    """What a replica received (and may have acknowledged) is applied before the restart
    discards its relay log."""
    fake, replica = Fake(dict(REPLICA)), FakeReplica(catch_up=3)
    code, out = Restart(CFG, fake.status, fake.request, fake.systemctl, fake.clock, fake.sleep, replica).run(60)
    assert code == 0 and replica.stopped and out["drained"] is True and out["drain_seconds"] == 1.5
    assert fake.calls == [("restart", "mariadb")]


def test_a_drain_that_does_not_finish_is_bounded_and_the_restart_goes_on():
    fake, replica = Fake(dict(REPLICA)), FakeReplica(catch_up=10**9)
    code, out = Restart(CFG, fake.status, fake.request, fake.systemctl, fake.clock, fake.sleep, replica).run(30)
    assert code == 0 and out["drained"] is False and out["drain_seconds"] >= 30
    assert fake.calls == [("restart", "mariadb")]


def test_a_server_that_replicates_from_nothing_is_not_drained():
    fake, replica = Fake(dict(REPLICA)), FakeReplica(replicating=False)
    code, out = Restart(CFG, fake.status, fake.request, fake.systemctl, fake.clock, fake.sleep, replica).run(60)
    assert code == 0 and "drained" not in out and replica.polls == 0
