import json
import threading
import time

import pytest
from etcd_fake import Clock, FakeEtcd

from webinfra_agents.ha import agent as ha
from webinfra_agents.ha import database, decide
from webinfra_agents.ha import etcd as etcd_api
from webinfra_agents.ha import store as store_mod

CFG = {"ttl": 10, "loop_wait": 1, "max_lag": 30, "failover_window": 300, "semisync": True}


def test_check_config_refuses_a_ttl_without_margin():
    assert decide.check_config(CFG) == []
    assert "at least 3 x loop_wait" in decide.check_config(dict(CFG, ttl=4))[0]
    assert "above 0" in decide.check_config(dict(CFG, loop_wait=0))[0]


def test_lease_valid_until_the_fence_margin():
    assert decide.lease_valid(100.0, 107.9, CFG)
    assert not decide.lease_valid(100.0, 108.0, CFG)
    assert not decide.lease_valid(None, 100.0, CFG)


def test_relay_applied_and_follow_decision():
    assert decide.relay_applied({"gtid_io_pos": "0-1-10", "executed_gtid_set": "0-1-10"})
    assert not decide.relay_applied({"gtid_io_pos": "0-1-11", "executed_gtid_set": "0-1-10"})
    assert decide.follow_decision("0-1-10", "0-2-12") == ("follow", "")
    verdict, detail = decide.follow_decision("0-1-12", "0-2-12")
    assert verdict == "errant" and "0-1-12" in detail


@pytest.mark.parametrize(
    ("db", "errant", "lag", "leader", "window", "reason"),
    [
        ({"ok": False}, "", 0, None, False, "not answering"),
        ({"ok": True, "replica": {}}, "0-1-9 and more", 0, None, False, "errant transactions: 0-1-9"),
        ({"ok": True, "replica": {"last_sql_error": "dup"}}, "", 0, None, False, "SQL thread stopped: dup"),
        ({"ok": True, "gtid": "0-1-4", "replica": {"gtid_io_pos": "0-2-4"}}, "", 0, None, False, "diverged"),
        ({"ok": True, "replica": {}}, "", 31, None, False, "lagged 31"),
        ({"ok": True, "replica": {}}, "", None, None, False, "lag unknown"),
        ({"ok": True, "gtid": "0-1-4", "replica": {}}, "", 0, {"semisync": False, "gtid": "0-1-5"}, False, "async"),
        ({"ok": True, "replica": {}}, "", 0, {"semisync": True}, True, "failover happened"),
    ],
)
def test_eligibility_refusals(db, errant, lag, leader, window, reason):
    ok, why = decide.eligibility(db, errant, lag, leader, dict(CFG, members=["a", "b"]), window)
    assert not ok and reason in why


def test_a_replica_still_applying_is_eligible_by_what_it_received():
    """Its acknowledgements were for its relay log: the busiest replica may have the most."""
    db = {"ok": True, "gtid": "0-1-4", "replica": {"gtid_io_pos": "0-1-9", "sql_running": True}}
    assert decide.received(db) == "0-1-9"
    assert decide.eligibility(db, "", 0, {"semisync": True, "gtid": "0-1-9"}, dict(CFG, members=["a", "b"]), False)[0]


def test_known_lag_from_what_etcd_recorded_when_the_agent_restarted():
    leader = {"gtid": "0-1-9"}
    assert decide.known_lag(3, "0-1-1", leader, None) == 3  # measured
    assert decide.known_lag(None, "0-1-9", leader, None) == 0  # has the leader's recorded position
    assert decide.known_lag(None, "0-1-5", leader, 2) == 2  # published before its restart
    assert decide.known_lag(None, "0-1-5", leader, None) is None


def test_choose_by_received_positions_among_every_live_peer():
    final = {"final": True, "candidate": True}
    assert decide.choose("b", "0-1-10", {"a": dict(final, received="0-1-9")}) == ("acquire", "")
    assert decide.choose("b", "0-1-10", {"a": dict(final, received="0-1-10")})[0] == "wait"
    assert decide.choose("a", "0-1-10", {"b": dict(final, received="0-1-10")})[0] == "acquire"
    assert decide.choose("a", "0-1-10", {"b": dict(final, received="0-1-11")})[0] == "wait"
    assert decide.choose("a", "0-1-10", {"b": dict(final, received="0-2-10")})[0] == "diverged"
    # A peer that is no candidate (lagging, paused by an error) but has more: nobody loses it.
    verdict, detail = decide.choose("a", "0-1-10", {"b": {"final": True, "candidate": False, "received": "0-1-12"}})
    assert verdict == "wait" and "not a candidate" in detail
    # A live peer that has not published since the leader went: waited for.
    assert decide.choose("a", "0-1-10", {"b": {"final": False, "received": "0-1-1"}})[0] == "wait"
    # A peer whose database does not answer has nothing to offer.
    assert decide.choose("a", "0-1-10", {"b": {"final": True, "received": None}})[0] == "acquire"


def test_stalled_sessions():
    rows = [{"state": "Waiting for global read lock", "time": 12}, {"state": "Sending data", "time": 99}]
    assert decide.stalled(rows, 10) == rows[:1]
    assert decide.stalled(rows, 0) == []
    assert decide.stalled([{"state": "Waiting for commit lock", "time": 3}], 10) == []


def test_check_config_ties_the_ttl_to_the_hung_agent_fence():
    assert decide.check_config(dict(CFG, ttl=7, watchdog=3)) == []
    problems = decide.check_config(dict(CFG, ttl=6, watchdog=3))
    assert problems and "hung agent" in problems[0]


# --- the loop against an in-memory etcd and fake servers ---------------------------------------


class FakeDb:
    def __init__(self, name, gtid=""):
        self.name, self.gtid, self.read_only, self.ok, self.source = name, gtid, True, True, None
        self.fences, self.semisync, self.replicas_connected = 0, True, 0
        self.semisync_enabled, self.dumps_ended, self.nudges, self.stale_ended = False, [], 0, 0

    def observe(self):
        if not self.ok:
            return {"ok": False, "error": "down"}
        replica = None
        if self.source:
            replica = {
                "source_host": self.source,
                "io_running": True,
                "sql_running": True,
                "seconds_behind": 0,
                "gtid_io_pos": getattr(self, "io", None) or self.gtid,
                "executed_gtid_set": self.gtid,
            }
        return {
            "ok": True,
            "read_only": self.read_only,
            "gtid": self.gtid,
            "semisync": self.semisync,
            "replicas_connected": self.replicas_connected,
            "semisync_enabled": self.semisync_enabled,
            "semisync_clients": self.replicas_connected if self.semisync_enabled else 0,
            "replica": replica,
        }

    def fence(self):
        self.read_only = True
        self.fences += 1
        return True

    def promote(self, semisync):
        self.read_only, self.source, self.semisync_enabled = False, None, semisync

    def nudge_semisync(self):
        self.nudges += 1
        self.semisync = True

    def end_dump_threads(self, addresses):
        self.dumps_ended.append(sorted(addresses))
        return [a + ":40000" for a in addresses]

    def end_stale_dump_threads(self):
        ended = [f"10.0.0.9:{41000 + i}" for i in range(self.replicas_connected)]
        self.stale_ended += len(ended)
        self.replicas_connected = 0
        return ended

    def follow(self, address, fresh_start):
        self.source = address
        return {"changed": True}

    def stop_replication(self):
        return None

    def wait_applied(self, position, timeout):
        return True

    def processlist(self):
        return getattr(self, "sessions", [])

    def drain(self, position, timeout):
        self.drained = position
        self.gtid = position  # applied what it received
        return True

    def close(self):
        return None

    def last_resort(self):
        raise AssertionError("SQL fencing works in these tests")


def cluster(names=("db-01", "db-02")):
    clock = Clock()
    store = FakeEtcd(clock)
    agents = {}
    for name in names:
        cfg = dict(CFG, name=name, address=name + ".addr", bootstrap=names[0], members=list(names))
        agents[name] = ha.Agent(cfg, etcd=store, db=FakeDb(name, "0-1-5"), clock=clock, wall=clock)
    # A fresh cluster: the bootstrap waits 2 x loop_wait + 2 s for peers that saw it led.
    for _round in range(5):
        for agent in agents.values():
            agent.step()
        clock.now += 1
    return clock, store, agents


def rounds(clock, agents, count, skip=()):
    for _round in range(count):
        for name, agent in agents.items():
            if name not in skip:
                agent.renew()  # the keeper thread's work
                agent.guard()  # the guard thread's
                agent.step()
        clock.now += 1


def writable(agents):
    return sorted(n for n, a in agents.items() if a.db.ok and not a.db.read_only)


def test_bootstrap_then_replica_follows():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    assert writable(agents) == ["db-01"]
    assert agents["db-02"].db.source == "db-01.addr"
    assert agents["db-01"].api.answers()["primary"] and not agents["db-02"].api.answers()["primary"]


def test_dead_primary_is_replaced_after_the_lease_and_never_two_writers():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-01"].db.ok = False  # the host is gone: its agent runs no more rounds
    for _round in range(20):
        rounds(clock, agents, 1, skip=("db-01",))
        assert len([n for n in writable(agents) if n != "db-01"]) <= 1
    assert writable(agents) == ["db-02"]
    assert json.loads(store.kv["/webinfra/webinfra/last_failover"]["value"])["to"] == "db-02"


def test_isolated_primary_fences_itself_before_anyone_can_take_over():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    old = agents["db-01"]

    class Cut:  # db-01 cannot reach etcd; the others can
        def __getattr__(self, name):
            raise etcd_api.EtcdError("partitioned")

    old.store.client = old.keeper_store.client = Cut()
    fenced_at = promoted_at = None
    for _round in range(20):
        rounds(clock, agents, 1)
        if fenced_at is None and old.db.read_only:
            fenced_at = clock.now
        if promoted_at is None and not agents["db-02"].db.read_only:
            promoted_at = clock.now
    assert fenced_at is not None and promoted_at is not None and fenced_at < promoted_at


def test_failover_window_blocks_a_second_failover():
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    leader = writable(agents)
    assert len(leader) == 1
    agents[leader[0]].db.ok = False
    rounds(clock, agents, 30, skip=("db-01", leader[0]))
    assert writable({n: a for n, a in agents.items() if n not in ("db-01", leader[0])}) == []
    survivor = next(a for n, a in agents.items() if n not in ("db-01", leader[0]))
    assert "failover happened" in survivor.blocked
    assert "webinfra_ha_failover_blocked 1" in survivor.api.metrics()


def test_returning_primary_with_errant_transactions_stays_out():
    """With mysql_replication_ha_rejoin off: held out until rebuild.yml."""
    clock, store, agents = cluster()
    agents["db-01"].cfg["rejoin"] = False
    rounds(clock, agents, 3)
    agents["db-01"].db.gtid = "0-1-6"  # written after the others saw 0-1-5, never replicated
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    agents["db-02"].db.gtid = "0-2-6"
    rounds(clock, agents, 1, skip=("db-01",))
    old = agents["db-01"]
    old.db.ok, old.db.source, old.db.read_only = True, None, False  # restarted writable by mistake
    old.lease = None
    rounds(clock, agents, 3)
    assert writable(agents) == ["db-02"]
    assert old.db.source is None and "0-1-6" in old.state.errant
    assert not old.api.answers()["replica"]


def test_switchover_hands_over_to_the_target():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    store.put("/webinfra/webinfra/switchover", json.dumps({"to": "db-02"}))
    rounds(clock, agents, 4)
    assert writable(agents) == ["db-02"]
    assert agents["db-01"].db.source == "db-02.addr"


def test_paused_cluster_does_not_fail_over():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    assert agents["db-02"].api.request("/pause", {"reason": "maintenance", "seconds": 600})[0] == 200
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    assert writable(agents) == []
    assert agents["db-02"].state.paused
    assert agents["db-02"].snapshot()["pause"]["reason"] == "maintenance"


def test_forced_failover_while_paused():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    assert agents["db-02"].api.request("/failover", {})[0] == 409  # a leader holds the lease
    assert agents["db-02"].api.request("/pause", {"reason": "choose by hand"})[0] == 200
    agents["db-01"].db.ok = False
    rounds(clock, agents, 15, skip=("db-01",))
    assert writable(agents) == []
    code, answer = agents["db-02"].api.request("/failover", {})
    assert code == 202, answer
    rounds(clock, agents, 2, skip=("db-01",))
    assert writable(agents) == ["db-02"]
    assert "/webinfra/webinfra/switchover" not in store.kv


def test_requests_refuse_bad_targets():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    assert agents["db-01"].api.request("/switchover", {"to": "db-01"})[0] == 400
    assert agents["db-01"].api.request("/switchover", {"to": "web-01"})[0] == 400
    assert agents["db-01"].api.request("/nothing", {})[0] == 404


def test_a_blocked_round_does_not_let_the_lease_lapse():
    """The keeper renews while a round is stuck (a slow promotion): no failover happens."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    for _second in range(20):  # db-01's main loop is stuck: only its keeper runs
        agents["db-01"].renew()
        agents["db-02"].step()
        clock.now += 1
    assert writable(agents) == ["db-01"]


def test_keeper_fences_when_renewal_fails_past_the_deadline():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    store.up = False
    fenced_at = None
    for second in range(12):
        agents["db-01"].renew()
        if fenced_at is None and agents["db-01"].db.read_only:
            fenced_at = second
        clock.now += 1
    assert fenced_at is not None and fenced_at <= 8


def test_replica_lag_is_zero_when_it_has_the_leaders_position():
    db = {"ok": True, "gtid": "0-2-50", "replica": {"io_running": True, "seconds_behind": 291}}
    assert decide.replica_lag(db, "0-2-50", None) == 0
    assert decide.replica_lag(db, "0-2-51", None) == 291
    assert decide.replica_lag({"ok": True, "gtid": "0-2-40", "replica": {"io_running": False}}, "0-2-51", 3) == 3


def test_a_keepalive_without_ttl_is_not_an_expiry_while_the_key_carries_the_lease():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"]
    real = store.keepalive
    store.keepalive = lambda lease: 0  # an answer without TTL during an etcd election
    leader.renew()
    assert leader.lease is not None and not leader.db.read_only
    store.keepalive = real


def test_an_asynchronous_leader_is_never_replaced_automatically():
    """It may have acknowledged writes after the last position it reported."""
    cfg = dict(CFG, members=["a", "b"])
    leader = {"semisync": False, "gtid": "0-1-9"}
    assert not decide.eligibility({"ok": True, "gtid": "0-1-9", "replica": {}}, "", 0, leader, cfg, False)[0]
    assert not decide.eligibility({"ok": True, "gtid": "0-1-8", "replica": {}}, "", 0, leader, cfg, False)[0]
    synchronous = {"semisync": True, "gtid": "0-1-9"}
    assert decide.eligibility({"ok": True, "gtid": "0-1-9", "replica": {}}, "", 0, synchronous, cfg, False) == (
        True,
        "",
    )


def test_the_guard_fences_at_the_deadline_even_while_a_renewal_hangs():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"]
    leader.renew()
    for _tenth in range(79):  # 7.9 s without renewal: still valid
        clock.now += 0.1
        assert not leader.guard()
    clock.now += 0.2
    assert leader.guard() and leader.db.read_only and leader.lease is None


def test_switchover_waits_for_the_target_to_see_it_then_hands_over_in_one_round():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    code, _answer = agents["db-01"].api.request("/switchover", {"to": "db-02"})
    assert code == 202 and agents["db-01"].wake.is_set()  # the leader's loop runs at once
    assert agents["db-01"].step() == "switchover-waiting"  # db-02 has not seen it yet
    assert writable(agents) == ["db-01"]
    agents["db-02"].step()
    assert agents["db-02"].hurry and agents["db-01"].hurry  # both poll fast now
    assert agents["db-01"].step() == "handed-over"
    assert agents["db-02"].step() == "switchover"
    assert writable(agents) == ["db-02"]
    agents["db-02"].step()
    assert not agents["db-02"].hurry  # the request is gone with the hand-over


def test_a_switchover_target_that_never_answers_does_not_block_the_leader_for_ever():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-01"].api.request("/switchover", {"to": "db-02"})
    assert agents["db-01"].step() == "switchover-waiting"
    clock.now += ha.SWITCHOVER_ACK_WAIT
    assert agents["db-01"].step() == "handed-over"


def test_switchover_pending_ignores_forced_and_stale_requests():
    assert decide.switchover_pending({"to": "db-02", "requested": 100}, 130)
    assert not decide.switchover_pending({"to": "db-02", "requested": 100}, 100 + decide.SWITCHOVER_MAX_AGE)
    assert not decide.switchover_pending({"to": "db-02", "force": True, "at": 100}, 101)
    assert not decide.switchover_pending(None, 101)


def test_an_asynchronous_leader_that_went_down_is_judged_by_what_it_reported_while_leading():
    """The leader fell back to asynchronous commits (its replica was cut off) and wrote ahead; then
    its database stopped while its agent kept publishing (read-only, no position): the replica
    lacks acknowledged writes and must not take over."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"].db
    leader.semisync, leader.gtid = False, "0-1-9"
    rounds(clock, agents, 2)
    leader.ok = False
    rounds(clock, agents, 30)
    assert writable(agents) == []
    assert "the last leader ran asynchronously" in agents["db-02"].blocked


SS = """0      0      10.0.0.7:3306 10.0.0.6:38362
\t bbr wscale:10,10 rto:204 rtt:0.558/0.973 mss:1448 bytes_sent:6044 lastsnd:624 lastack:624 app_limited
0      60     10.0.0.7:3306 10.0.0.8:40000
\t cubic rto:1600 backoff:3 unacked:4 retrans:1/5 lastsnd:200 lastrcv:9000 lastack:4200 busy:4000ms
0      60     [::ffff:10.0.0.9]:3306 [::ffff:10.0.0.9]:41000
\t cubic unacked:1 lastack:1900
"""


def test_silent_peers_are_those_that_left_data_unacknowledged_too_long():
    assert decide.silent_peers(SS, 2000) == ["10.0.0.8:40000"]
    assert decide.silent_peers(SS, 1000) == ["10.0.0.8:40000", "10.0.0.9:41000"]
    assert decide.silent_peers("", 2000) == []
    assert decide.peer("::ffff:10.0.0.9:41000") == "10.0.0.9:41000"
    assert decide.silence_limit_ms({"replication": {"heartbeat_period": 1}}) == 2000
    assert decide.silence_limit_ms({"replication": {"heartbeat_period": 5}}) == 10000


def test_the_leader_ends_the_dump_threads_of_silent_replicas():
    clock, store, agents = cluster()
    ended = []
    agents["db-01"].db.end_silent_dump_threads = lambda limit: ended.append(limit) or ["10.0.0.8:40000"]
    rounds(clock, agents, 1)
    agents["db-01"].db.replicas_connected = 1
    rounds(clock, agents, 2)
    assert ended and ended[0] == 2000
    assert "webinfra_ha_silent_replicas_cut_total 2" in agents["db-01"].api.metrics()


def test_the_old_leader_does_not_judge_the_new_one_by_its_record_from_before_the_key():
    """Between the target taking the key and publishing its position, the old leader (ahead of
    the target's last follower record) must wait, not call itself errant."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    old, new = agents["db-01"], agents["db-02"]
    old.db.gtid = "0-1-7"  # written after db-02 last published "0-1-5"
    new.db.wait_applied = lambda position, timeout: setattr(new.db, "gtid", position) or True
    promote = new.db.promote

    def promote_while_the_old_leader_looks(semisync):
        assert old.step() == "follower"  # sees the new key, not yet the new position
        return promote(semisync)

    new.db.promote = promote_while_the_old_leader_looks
    old.api.request("/switchover", {"to": "db-02"})
    old.step()
    new.step()
    assert old.step() == "handed-over"
    assert new.step() == "switchover"
    rounds(clock, agents, 2)
    assert not old.state.errant
    assert old.db.source == "db-02.addr" and writable(agents) == ["db-02"]


def test_replicas_connected_before_semi_sync_was_on_reconnect_once():
    """A new leader (its old primary gone) commits asynchronously; when that server comes back as
    a replica the leader turns semi-sync on and ends its dump thread once, so that it reconnects
    as a semi-synchronous replica (MariaDB decides that when the dump starts)."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"].db
    assert leader.semisync_enabled is False and leader.dumps_ended == []
    leader.replicas_connected = 1  # db-02 connected
    rounds(clock, agents, 3)
    assert leader.semisync_enabled is True
    assert leader.dumps_ended == [["db-02.addr"]]


def test_an_idle_leader_makes_its_replica_acknowledge_once_so_that_it_counts_as_synchronous():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"].db
    leader.semisync = False  # status OFF: nothing acknowledged since the replica connected
    leader.replicas_connected = 1
    rounds(clock, agents, 3)
    assert leader.nudges == 1 and leader.semisync
    record = json.loads(store.kv["/webinfra/webinfra/last_leader"]["value"])
    assert record["semisync"] is True


def test_the_target_of_a_switchover_turns_semi_sync_on_at_once():
    """The former leader then connects as a semi-synchronous replica: no dump thread to end."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-01"].api.request("/switchover", {"to": "db-02"})
    rounds(clock, agents, 3)
    assert writable(agents) == ["db-02"]
    assert agents["db-02"].db.semisync_enabled is True
    agents["db-02"].db.replicas_connected = 1
    rounds(clock, agents, 2)
    assert agents["db-02"].db.dumps_ended == []


def test_the_semisync_async_gauge_is_set_only_on_a_replicated_leader_without_acknowledgements():
    clock, _store, agents = cluster()
    rounds(clock, agents, 3)
    assert "webinfra_ha_semisync_async 0" in agents["db-01"].api.metrics()
    agents["db-01"].db.semisync = False
    rounds(clock, agents, 1)
    assert "webinfra_ha_semisync_async 1" in agents["db-01"].api.metrics()
    assert "webinfra_ha_semisync_async 0" in agents["db-02"].api.metrics()  # a replica
    clock, _store, alone = cluster(names=("db-01",))
    alone["db-01"].db.semisync = False
    rounds(clock, alone, 3)
    assert "webinfra_ha_semisync_async 0" in alone["db-01"].api.metrics()


def test_a_follower_ends_the_dump_threads_left_from_its_leadership():
    """With semi-sync off there, before a replica can register again (MariaDB 11.8 hangs when a
    registration meets a stale dump thread while the ACK receiver runs)."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-02"].db.replicas_connected = 2
    rounds(clock, agents, 1)
    assert agents["db-02"].db.stale_ended == 2 and agents["db-02"].db.replicas_connected == 0


def test_a_new_leader_ends_stale_dump_threads_before_it_promotes_and_starts_asynchronous():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    new = agents["db-02"].db
    new.replicas_connected = 1
    promote = new.promote

    def check_then_promote(semisync):
        assert new.stale_ended == 1  # before semi-sync can be turned on
        return promote(semisync)

    new.promote = check_then_promote
    agents["db-01"].db.ok = False  # the leader's server stops answering: it releases the key
    rounds(clock, agents, 15)
    assert writable(agents) == ["db-02"]
    assert new.semisync_enabled is False  # no replica connected yet: asynchronous


class DumpCursor:
    """information_schema.PROCESSLIST with two dump threads that end a few reads after KILL."""

    def __init__(self):
        self.threads = {7: "10.0.0.8:40000", 9: "10.0.0.9:41000"}
        self.killed, self.reads_after_kill, self.rows = [], 0, []

    def execute(self, sql, args=None):
        if sql.startswith("KILL CONNECTION"):
            self.killed.append(int(sql.split()[-1]))
        elif "Binlog Dump" in sql:
            if self.killed:
                self.reads_after_kill += 1
                if self.reads_after_kill >= 3:
                    self.threads = {}
            self.rows = [{"id": i, "host": h} for i, h in self.threads.items()]

    def fetchall(self):
        return self.rows


def test_end_stale_dump_threads_kills_every_dump_thread_and_waits_until_they_are_gone(monkeypatch):
    db = database.Database(dict(CFG, socket="/run/mysqld/mysqld.sock"))
    cur = DumpCursor()
    monkeypatch.setattr(db, "cursor", lambda: cur)
    monkeypatch.setattr(database.time, "sleep", lambda _s: None)
    assert sorted(db.end_stale_dump_threads()) == ["10.0.0.8:40000", "10.0.0.9:41000"]
    assert sorted(cur.killed) == [7, 9] and cur.threads == {}


class SlowFenceDb(FakeDb):
    """A fence that takes a while and notices a second thread on the same connection."""

    def __init__(self, name, gtid=""):
        super().__init__(name, gtid)
        self.busy, self.overlaps = False, 0

    def fence(self):
        if self.busy:
            self.overlaps += 1
        self.busy = True
        time.sleep(0.05)
        self.busy = False
        return super().fence()


def test_fences_on_the_fencing_connection_run_one_at_a_time():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"]
    leader.fence_db = leader.db = SlowFenceDb("db-01", "0-1-5")
    leader.db.read_only = False
    threads = [threading.Thread(target=leader.drop_lease, args=("test",)) for _thread in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The first fence made the server read-only; the others saw it and did not fence again.
    assert leader.db.overlaps == 0 and leader.db.fences == 1 and leader.db.read_only


def test_the_watchdog_signal_fences_the_leader_then_exits():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"]
    exits = []
    ha.on_watchdog(leader, wait=5, exit_now=exits.append)
    assert exits == [ha.EXIT_WATCHDOG]
    assert leader.db.read_only and leader.lease is None and not leader.running
    assert leader.api.answers()["primary"] is False


def test_the_watchdog_signal_exits_after_its_wait_when_a_fence_hangs():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    leader = agents["db-01"]
    release = threading.Event()
    leader.fence_db.fence = lambda: release.wait(10)
    exits, started = [], time.monotonic()
    ha.on_watchdog(leader, wait=0.2, exit_now=exits.append)
    waited = time.monotonic() - started
    release.set()
    assert exits == [ha.EXIT_WATCHDOG] and waited < 2


def test_the_watchdog_signal_on_a_replica_leaves_its_read_only_server_alone():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    replica = agents["db-02"]
    fences = replica.db.fences
    ha.on_watchdog(replica, wait=5, exit_now=lambda code: None)
    assert replica.db.read_only and replica.db.fences == fences


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"seconds": 60}, "needs a reason"),
        ({"reason": "  "}, "needs a reason"),
        ({"reason": "x", "seconds": 0}, "ends by itself"),
        ({"reason": "x", "seconds": -5}, "ends by itself"),
        ({"reason": "x", "seconds": float("inf")}, "ends by itself"),
        ({"reason": "x", "seconds": 3601}, "at most 3600"),
        ({"reason": "x", "seconds": "forever"}, "ends by itself"),
    ],
)
def test_a_pause_needs_a_reason_and_an_end(body, message):
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    code, answer = agents["db-02"].api.request("/pause", body)
    assert code == 400 and message in answer["error"]
    assert "/webinfra/webinfra/pause" not in store.kv


def test_a_pause_expires_and_automatic_failover_comes_back():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    code, answer = agents["db-02"].api.request("/pause", {"reason": "kernel upgrade", "by": "ops", "seconds": 30})
    assert code == 200 and answer["until"] == clock.now + 30
    rounds(clock, agents, 1)
    metrics = agents["db-02"].api.metrics()
    assert "webinfra_ha_paused 1" in metrics
    assert f"webinfra_ha_pause_expires_timestamp_seconds {answer['until']:.3f}" in metrics
    agents["db-01"].db.ok = False
    rounds(clock, agents, 25, skip=("db-01",))
    assert writable(agents) == []  # paused: nobody takes over
    rounds(clock, agents, 30, skip=("db-01",))
    # The pause ended by itself (its key deleted) and the replica took over.
    assert "/webinfra/webinfra/pause" not in store.kv and not agents["db-02"].state.paused
    assert writable(agents) == ["db-02"]
    assert "webinfra_ha_pause_expires_timestamp_seconds 0.000" in agents["db-02"].api.metrics()


def test_a_pause_of_an_older_agent_without_an_end_lasts_pause_max():
    assert decide.pause_active({"at": 1000.0, "by": "x"}, 4599.0, 3600)
    assert not decide.pause_active({"at": 1000.0, "by": "x"}, 4600.0, 3600)
    assert decide.pause_active({"until": 2000.0}, 1999.0, 3600) and not decide.pause_active(
        {"until": 2000.0}, 2000.0, 3600
    )
    assert not decide.pause_active(None, 0, 3600) and not decide.pause_active({"until": "soon"}, 0, 3600)


def test_operator_requests_only_over_the_control_socket(tmp_path):
    import http.client  # noqa: PLC0415
    import os  # noqa: PLC0415
    import stat  # noqa: PLC0415
    from http.server import ThreadingHTTPServer  # noqa: PLC0415

    from webinfra_agents.ha import api as ha_api  # noqa: PLC0415

    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agent = agents["db-01"]
    port = ThreadingHTTPServer(("127.0.0.1", 0), ha_api.make_handler(agent.api))
    control = ha.ControlServer(str(tmp_path / "run" / "control.sock"), ha_api.make_handler(agent.api, control=True))
    for server in (port, control):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port.server_address[1], timeout=5)
        for path in ("/pause", "/switchover", "/failover", "/resume"):
            conn.request("POST", path, body=json.dumps({"reason": "x", "to": "db-02"}))
            answer = conn.getresponse()
            assert answer.status == 403 and "not taken over the network" in json.loads(answer.read())["error"]
        conn.request("GET", "/status")
        assert conn.getresponse().status == 200
        conn.close()
        assert "/webinfra/webinfra/pause" not in store.kv and "/webinfra/webinfra/switchover" not in store.kv
        # The socket is root's alone (0600 in a 0700 directory); through it the requests work.
        path = str(tmp_path / "run" / "control.sock")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o700
        status, answer = ha_api.control_request(path, "/pause", {"reason": "tested", "seconds": 60})
        assert status == 200 and answer["paused"] and "/webinfra/webinfra/pause" in store.kv
        status, answer = ha_api.control_request(path, "/switchover", {"to": "db-02"})
        assert status == 202 and answer["switchover"] == "db-02"
    finally:
        port.shutdown()
        control.shutdown()
        control.server_close()
    assert not os.path.exists(path)


def test_the_request_command_prints_the_answer_and_fails_on_a_refusal(tmp_path, capsys):
    from webinfra_agents.ha import api as ha_api  # noqa: PLC0415

    clock, _store, agents = cluster()
    rounds(clock, agents, 3)
    sock = str(tmp_path / "c.sock")
    control = ha.ControlServer(sock, ha_api.make_handler(agents["db-01"].api, control=True))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    config = tmp_path / "ha-agent.json"
    config.write_text(json.dumps({"name": "db-01", "control_socket": sock}))
    try:
        assert ha.main(["request", "--config", str(config), "pause", "--reason", "tested", "--seconds", "60"]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == 200
        assert ha.main(["request", "--config", str(config), "pause", "--reason", "tested", "--seconds", "0"]) == 1
        assert "ends by itself" in json.loads(capsys.readouterr().out)["error"]
    finally:
        control.shutdown()
        control.server_close()
    assert ha.main(["request", "--config", str(config), "resume"]) == 1
    assert "control socket" in json.loads(capsys.readouterr().out)["error"]


def _answers(request):
    try:
        return request() == 200
    except (ConnectionError, OSError):
        return False


def wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_the_port_drops_silent_clients_and_limits_connections(monkeypatch):
    import http.client  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from webinfra_agents.ha import api as ha_api  # noqa: PLC0415
    from webinfra_agents.kit.http import LimitedHTTPServer  # noqa: PLC0415

    clock, _store, agents = cluster()
    rounds(clock, agents, 3)
    # Long enough that no silent client is dropped before the limit is checked, even on a busy machine.
    monkeypatch.setattr(ha_api, "REQUEST_TIMEOUT", 2.0)
    server = LimitedHTTPServer(("127.0.0.1", 0), ha_api.make_handler(agents["db-01"].api), max_connections=3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def primary():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        try:
            conn.request("GET", "/primary")
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        idle = [socket.create_connection(("127.0.0.1", port)) for _sock in range(2)]
        started = time.monotonic()
        assert primary() == 200 and time.monotonic() - started < 0.4  # beside two silent clients
        # The answered request's slot comes back once its thread ends (after the client read the
        # answer); then the third silent client takes the last slot.
        assert wait_until(lambda: server.slots._value == 1, 2.0)  # noqa: SLF001
        idle.append(socket.create_connection(("127.0.0.1", port)))
        assert wait_until(lambda: server.slots._value == 0, 2.0)  # noqa: SLF001
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            primary()  # the limit: three silent clients hold every slot
        # They are dropped after REQUEST_TIMEOUT, and their slots come back.
        assert wait_until(lambda: _answers(primary), 6.0)
        for sock in idle:
            sock.close()
    finally:
        server.shutdown()
        server.server_close()


# --- the fault matrix's cells, against the in-memory etcd ---------------------------------------


def leader_of(agents):
    return [n for n, a in agents.items() if a.lease is not None]


def test_a_replica_agent_restarted_during_the_outage_still_takes_over(tmp_path):
    """It judges itself by what etcd recorded (its lag, the last leader's position), not memory."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-01"].db.ok = False  # the primary's host is gone
    old = agents["db-02"]
    agents["db-02"] = ha.Agent(old.cfg, etcd=store, db=old.db, clock=clock, wall=clock)  # restarted: no memory
    for _round in range(20):
        rounds(clock, agents, 1, skip=("db-01",))
    assert writable(agents) == ["db-02"]


def test_the_most_advanced_replica_wins_even_while_it_still_applies():
    """db-03 received (acknowledged) 0-1-9 and applied only 0-1-6; db-02 has 0-1-7: db-03 wins,
    applies what it received first, then takes writes."""
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    agents["db-01"].db.ok = False
    agents["db-02"].db.gtid = "0-1-7"
    agents["db-03"].db.gtid, agents["db-03"].db.io = "0-1-6", "0-1-9"
    for _round in range(20):
        rounds(clock, agents, 1, skip=("db-01",))
    assert writable(agents) == ["db-03"]
    assert agents["db-03"].db.drained == "0-1-9"


def test_a_live_replica_with_more_blocks_a_candidate_with_less():
    """db-02 is ineligible (here: it gave a lease up over a write stall) but holds 0-1-9: db-03
    (0-1-8) must not take over and lose it."""
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    agents["db-01"].db.ok = False
    agents["db-02"].db.gtid = "0-1-9"
    agents["db-02"].stall_until = clock.now + 10_000
    agents["db-03"].db.gtid = "0-1-8"
    for _round in range(20):
        rounds(clock, agents, 1, skip=("db-01",))
    assert writable(agents) == []
    assert "db-02 has transactions" in agents["db-03"].state.blocked


def test_the_sitting_leader_takes_its_vanished_key_back_and_nobody_bootstraps():
    """etcd's keys deleted (a re-created cluster, a wiped data directory) while db-02 leads and
    db-01 (the inventory's bootstrap server) lags: db-02 stays the only writer."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-02"].cfg["bootstrap"] = "db-01"
    store.kv.pop("/webinfra/webinfra/leader")  # the keys deleted, the lease kept
    for key in [k for k in store.kv if k != "/webinfra/webinfra/leader"]:
        store.kv.pop(key)
    for _round in range(10):
        rounds(clock, agents, 1)
        assert len(writable(agents)) == 1
    assert writable(agents) == ["db-01"] and leader_of(agents) == ["db-01"]
    store.wipe()  # now the leases too (a new etcd cluster)
    for _round in range(10):
        rounds(clock, agents, 1)
        assert len(writable(agents)) <= 1
    assert writable(agents) == ["db-01"]
    assert "/webinfra/webinfra/initialized" in store.kv


def test_a_lost_etcd_state_without_a_leader_elects_by_position_never_bootstraps():
    """Every agent restarted and etcd empty: db-02 has more than the bootstrap server db-01."""
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    for agent in agents.values():
        agent.local.set(history=True)
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    assert writable(agents) == ["db-02"]
    agents["db-02"].db.gtid = "0-2-12"
    agents["db-01"].db.ok = True
    agents["db-01"].db.read_only = True
    store.wipe()
    restarted = {n: ha.Agent(a.cfg, etcd=store, db=a.db, clock=clock, wall=clock) for n, a in agents.items()}
    for agent in restarted.values():
        agent.local.set(history=True)
        agent.db.read_only = True
    for _round in range(20):
        rounds(clock, restarted, 1)
        assert len(writable(restarted)) <= 1
    assert writable(restarted) == ["db-02"]


def test_a_write_stalled_leader_gives_the_lease_up_and_a_replica_takes_over():
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-01"].db.sessions = [{"state": "Waiting for global read lock", "time": 11}]
    for _round in range(10):
        rounds(clock, agents, 1)
        assert len(writable(agents)) <= 1
    assert writable(agents) == ["db-02"]
    assert "write stall" in agents["db-01"].state.blocked or agents["db-01"].state.leader == "db-02"


def test_the_failover_window_survives_a_restart_and_ends_with_its_lease():
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    first = writable(agents)
    assert len(first) == 1 and "/webinfra/webinfra/failover_window" in store.kv
    restarted = {n: ha.Agent(a.cfg, etcd=store, db=a.db, clock=clock, wall=clock) for n, a in agents.items()}
    restarted[first[0]].db.ok = False
    rounds(clock, restarted, 30, skip=("db-01", first[0]))
    assert writable(restarted) == []  # inside the window (300 s)
    assert any("failover happened" in a.blocked for a in restarted.values())
    clock.now += 300
    rounds(clock, restarted, 20, skip=("db-01", first[0]))
    assert len(writable(restarted)) == 1


def test_errant_state_is_kept_across_a_restart_until_the_position_changes(tmp_path):
    clock = Clock()
    path = str(tmp_path / "state.json")
    cfg = dict(CFG, name="db-01", address="a", state_file=path)
    agent = ha.Agent(cfg, etcd=FakeEtcd(clock), db=FakeDb("db-01", "0-1-9"), clock=clock, wall=clock)
    agent.set_errant("0-1-9 not on the leader", "0-1-9")
    again = ha.Agent(cfg, etcd=FakeEtcd(clock), db=FakeDb("db-01", "0-1-9"), clock=clock, wall=clock)
    assert again.state.errant == "0-1-9 not on the leader"
    ok, why = decide.eligibility(again.db.observe(), again.state.errant, 0, None, cfg, False)
    assert not ok and "errant" in why


@pytest.mark.parametrize(
    ("writable_db", "fence_works", "killed"), [(False, True, False), (True, True, False), (True, False, True)]
)
def test_the_stop_fence_makes_a_writable_server_read_only_or_kills_it(tmp_path, writable_db, fence_works, killed):
    """ExecStopPost (`webinfra-ha-agent fence`): after a crash or the watchdog's kill."""
    config = tmp_path / "ha.json"
    config.write_text(json.dumps({"name": "db-01"}))
    seen = {}

    class Db(FakeDb):
        def __init__(self, cfg, read_timeout):
            super().__init__("db-01", "0-1-5")
            self.read_only = not writable_db
            seen["db"] = self

        def fence(self):
            if not fence_works:
                raise RuntimeError("Lock wait timeout exceeded")
            return super().fence()

        def last_resort(self):
            seen["killed"] = True

    status = ha.fence_main([str(config)], database=Db)
    assert seen.get("killed", False) is killed and status == (1 if killed else 0)
    assert seen["db"].read_only or killed


def test_a_new_leader_that_cannot_apply_what_it_received_leaves_the_last_leader_as_it_was():
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    last = store.kv["/webinfra/webinfra/last_leader"]["value"]
    agents["db-01"].db.ok = False
    agents["db-02"].db.drain = lambda position, timeout: False  # its SQL thread fails
    agents["db-02"].db.gtid = "0-1-6"  # the most advanced: it wins, then gives the key up
    rounds(clock, agents, 12, skip=("db-01",))
    assert json.loads(store.kv["/webinfra/webinfra/last_leader"]["value"])["name"] == json.loads(last)["name"]
    # db-02 holds transactions nobody else has (they may be acknowledged): nobody takes over.
    assert writable(agents) == []
    assert "db-02 has transactions" in agents["db-03"].state.blocked


def test_a_stall_is_waiters_in_every_round_while_nothing_commits():
    """The application gives up on a write after a few seconds and the server drops its wait:
    no single session waits 10 s, yet writes have stalled."""
    watch = decide.StallWatch(10)
    short = [{"state": "Waiting for backup lock", "time": 2}]
    assert watch.observe(0, short, "0-1-5") == []
    assert watch.observe(5, short, "0-1-5") == []
    assert watch.observe(10, short, "0-1-5") == short
    # Commits going through (the position moves): no stall.
    moving = decide.StallWatch(10)
    for second in range(0, 30, 2):
        assert moving.observe(second, short, f"0-1-{second}") == []
    # No waiter in a round: the count starts again.
    gaps = decide.StallWatch(10)
    assert gaps.observe(0, short, "p") == [] and gaps.observe(6, [], "p") == [] and gaps.observe(12, short, "p") == []
    assert decide.StallWatch(0).observe(100, [{"state": "Waiting for backup lock", "time": 99}], "p") == []


def test_a_deleted_leader_key_is_not_taken_while_its_lease_runs():
    """The keys deleted while the leader's main loop is slow to notice (its keeper still renews):
    the candidates wait for its lease, never two writable; the leader then takes its key back."""
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    for key in list(store.kv):
        store.kv.pop(key)
    for _round in range(6):
        agents["db-01"].renew()  # the keeper renews; the main loop does not run
        rounds(clock, agents, 1, skip=("db-01",))
        assert writable(agents) == ["db-01"]
    assert "lease still runs" in agents["db-02"].state.blocked
    rounds(clock, agents, 3)
    assert writable(agents) == ["db-01"] and leader_of(agents) == ["db-01"]


def test_a_re_created_etcd_is_not_taken_over_while_the_forgotten_lease_may_run():
    """etcd re-created (its revision starts again, the leader's lease forgotten) while the
    leader's main loop is slow to notice: no candidate takes over until that lease would have run
    out on its holder, whose guard fences it meanwhile; then one replica takes over."""
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    store.wipe()
    took_over = None
    for number in range(15):
        agents["db-01"].renew()  # fails: the new etcd does not know the lease
        agents["db-01"].guard()  # fences at the deadline of the last renewal
        rounds(clock, agents, 1, skip=("db-01",))
        assert len(writable(agents)) <= 1
        if took_over is None and set(writable(agents)) & {"db-02", "db-03"}:
            took_over = number
    assert "db-01" not in writable(agents) and len(writable(agents)) == 1
    assert took_over is not None and took_over >= CFG["ttl"] - 1


def test_the_leader_back_within_a_re_created_etcd_s_wait_keeps_leading():
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    store.wipe()
    for _round in range(2):
        agents["db-01"].renew()
        agents["db-01"].guard()
        rounds(clock, agents, 1, skip=("db-01",))
        assert writable(agents) == ["db-01"]
    assert "revision went back" in agents["db-02"].state.blocked
    rounds(clock, agents, 12)
    assert writable(agents) == ["db-01"] and leader_of(agents) == ["db-01"]


class FakeRewind:
    """rejoin.Rewind on a FakeDb: rolls the server back to the take-over position, or refuses."""

    calls = []
    refuse = ""

    def __init__(self, db, audit_dir):
        self.db, self.audit_dir = db, audit_dir

    def rejoin(self, take_over, leader, last_failover, me):
        FakeRewind.calls.append((me, take_over, leader.get("name"), (last_failover or {}).get("from")))
        if FakeRewind.refuse:
            raise ha.RejoinRefused(FakeRewind.refuse)
        self.db.gtid = take_over
        return {"transactions": 1, "gtids": "0-1-6..6", "audit": self.audit_dir, "leader": leader.get("name")}


def errant_former_primary(monkeypatch, refuse=""):
    """db-01 leads, writes 0-1-6 that db-02 never receives, dies; db-02 takes over at 0-1-5
    (recorded in last_failover) and writes 0-2-6; db-01 comes back."""
    FakeRewind.calls, FakeRewind.refuse = [], refuse
    monkeypatch.setattr(ha, "Rewind", FakeRewind)
    clock, store, agents = cluster()
    rounds(clock, agents, 3)
    agents["db-01"].db.gtid = "0-1-6"
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    agents["db-02"].db.gtid = "0-2-6"
    rounds(clock, agents, 1, skip=("db-01",))
    old = agents["db-01"]
    old.db.ok, old.db.source = True, None
    old.lease = None
    rounds(clock, agents, 4)
    return store, agents, old


def test_an_errant_former_primary_rolls_back_and_replicates_by_itself(monkeypatch):
    store, agents, old = errant_former_primary(monkeypatch)
    last_failover = json.loads(store.get("/webinfra/webinfra/last_failover")["value"])
    assert last_failover["from"] == "db-01" and last_failover["position"] == "0-1-5"
    assert FakeRewind.calls == [("db-01", "0-1-5", "db-02", "db-01")]
    assert writable(agents) == ["db-02"] and old.db.source == "db-02.addr" and not old.state.errant
    assert "webinfra_ha_rejoins_total 1" in old.api.metrics()


def test_a_refused_roll_back_leaves_the_server_errant_and_is_not_tried_again(monkeypatch):
    store, agents, old = errant_former_primary(monkeypatch, refuse="a statement flashback cannot undo: ALTER")
    assert len(FakeRewind.calls) == 1  # not again at the same position
    assert "not rolled back: a statement flashback cannot undo" in old.state.errant
    assert old.db.source is None and writable(agents) == ["db-02"]
    assert old.local.get("rejoin_refused") == "0-1-6"


def test_the_last_resort_kills_the_database_units_processes_from_its_cgroup(tmp_path):
    """The agent's own user has CAP_KILL, not root's systemctl: the server's PIDs come from the
    cgroup beside the agent's own, and each gets SIGKILL."""
    own = tmp_path / "cgroup"
    own.write_text("0::/system.slice/webinfra-ha-agent.service\n")
    procs = tmp_path / "system.slice" / "mariadb.service" / "cgroup.procs"
    assert database.unit_cgroup_procs("mariadb", str(own), str(tmp_path)) is None  # no such unit
    procs.parent.mkdir(parents=True)
    procs.write_text("41\n42\n")
    path = database.unit_cgroup_procs("mariadb", str(own), str(tmp_path))
    assert path == str(procs)
    sent = []

    def kill(pid, sig):
        if pid == 42:
            raise ProcessLookupError(pid)  # gone meanwhile: not counted
        sent.append((pid, sig))

    assert database.kill_unit("mariadb.service", path, kill) == [41]
    assert sent == [(41, database.signal.SIGKILL)]
    assert database.kill_unit("mariadb", str(tmp_path / "missing"), kill) == []


def test_the_last_resort_finds_the_unit_on_a_hybrid_or_v1_host(tmp_path):
    """A hybrid host (the unified hierarchy under /sys/fs/cgroup/unified, as on this lab's
    machine, where the fence's kill found nothing and a fenced leader stayed writable for 5 s) and
    a v1 host (systemd's own hierarchy only) have the unit's cgroup too."""
    container = "/libpod_parent/libpod-1/system.slice/webinfra-ha-agent.service"
    own = tmp_path / "cgroup"
    own.write_text(f"4:memory:/libpod_parent/libpod-1\n1:name=systemd:{container}\n0::{container}\n")
    unified = tmp_path / "unified" / "libpod_parent" / "libpod-1" / "system.slice" / "mariadb.service"
    unified.mkdir(parents=True)
    (unified / "cgroup.procs").write_text("7\n")
    assert database.unit_cgroup_procs("mariadb", str(own), str(tmp_path)) == str(unified / "cgroup.procs")
    (unified / "cgroup.procs").unlink()
    systemd = tmp_path / "systemd" / "libpod_parent" / "libpod-1" / "system.slice" / "mariadb.service"
    systemd.mkdir(parents=True)
    (systemd / "cgroup.procs").write_text("7\n")
    assert database.unit_cgroup_procs("mariadb", str(own), str(tmp_path)) == str(systemd / "cgroup.procs")


def test_a_former_primary_frozen_through_two_failovers_rolls_back_from_the_first(monkeypatch):
    """db-01 leads, writes 0-1-6 nobody receives, freezes; db-02 takes over at 0-1-5 and writes
    0-2-6, then dies too; db-03 takes over. db-01 comes back: etcd's last_failover now names
    db-02, but the failover history still says where db-02 took over from db-01."""
    FakeRewind.calls, FakeRewind.refuse = [], ""
    monkeypatch.setattr(ha, "Rewind", FakeRewind)
    clock, store, agents = cluster(("db-01", "db-02", "db-03"))
    rounds(clock, agents, 3)
    assert writable(agents) == ["db-01"]
    agents["db-01"].db.gtid = "0-1-6"
    agents["db-01"].db.ok = False
    rounds(clock, agents, 20, skip=("db-01",))
    first = [n for n in ("db-02", "db-03") if n in writable(agents)]
    assert len(first) == 1, writable(agents)
    other = "db-03" if first[0] == "db-02" else "db-02"
    agents[first[0]].db.gtid = "0-2-6"
    agents[other].db.gtid = "0-2-6"  # replicated
    rounds(clock, agents, 1, skip=("db-01",))
    agents[first[0]].db.ok = False
    rounds(clock, agents, 330, skip=("db-01", first[0]))  # past the failover window (300 s)
    assert writable(agents) == [other], writable(agents)
    history = json.loads(store.get("/webinfra/webinfra/failovers")["value"])
    assert [(r["from"], r["to"]) for r in history] == [("db-01", first[0]), (first[0], other)]
    assert json.loads(store.get("/webinfra/webinfra/last_failover")["value"])["from"] == first[0]
    old = agents["db-01"]
    old.db.ok, old.db.source = True, None
    old.lease = None
    rounds(clock, agents, 4, skip=(first[0],))
    assert FakeRewind.calls and FakeRewind.calls[0] == ("db-01", "0-1-5", other, "db-01")
    assert writable(agents) == [other] and old.db.source == other + ".addr" and not old.state.errant


def test_the_failover_history_keeps_the_last_records():
    view = store_mod.ClusterView(failovers=[{"from": "x", "to": "y", "n": i} for i in range(10)])
    puts = store_mod.with_failover(view, {"from": "a", "to": "b", "position": "0-1-9"})
    history = json.loads(puts["failovers"])
    assert len(history) == store_mod.FAILOVER_HISTORY and history[-1]["from"] == "a" and history[0]["n"] == 1
    assert json.loads(puts["last_failover"]) == history[-1]
    view = store_mod.ClusterView(
        failovers=[{"from": "a", "position": "0-1-5"}, {"from": "b", "position": "0-2-7"}],
        last_failover={"from": "b", "position": "0-2-7"},
    )
    assert store_mod.took_over_from(view, "a") == {"from": "a", "position": "0-1-5"}
    assert store_mod.took_over_from(view, "c") is None
    # A stack from before the history: the last failover alone.
    assert store_mod.took_over_from(store_mod.ClusterView(last_failover={"from": "a", "position": "0-1-5"}), "a")
