"""The HA agent's store (key layout, typed view, transactions as verbs), its lease object and its state."""

import json
import threading

import pytest
from etcd_fake import Clock, FakeEtcd

from webinfra_agents.ha.decide import Outcome
from webinfra_agents.ha.lease import Lease
from webinfra_agents.ha.state import AgentState, Role
from webinfra_agents.ha.store import Keys, Store

CFG = {"ttl": 10, "loop_wait": 1}
LEADER = json.dumps({"name": "db-01", "address": "10.0.0.1"}, sort_keys=True)


def store():
    clock = Clock()
    return clock, Store(FakeEtcd(clock), "shop")


def test_the_key_layout_lives_under_the_cluster_prefix():
    keys = Keys("shop")
    assert keys.prefix == "/webinfra/shop/"
    assert (keys.leader, keys.pause, keys.switchover) == (
        "/webinfra/shop/leader",
        "/webinfra/shop/pause",
        "/webinfra/shop/switchover",
    )
    assert keys.member("db-02") == "/webinfra/shop/members/db-02"


def test_an_empty_cluster_reads_as_an_empty_view():
    _clock, s = store()
    view = s.read()
    assert view.leader is None and view.leader_lease is None and view.members == {}
    assert not view.paused and view.initialized is None and view.switchover is None


def test_taking_leadership_is_one_transaction_that_only_one_member_wins():
    _clock, s = store()
    lease = s.grant(10)
    assert s.take_leadership(LEADER, lease, '{"gtid": "0-1-5"}', {"initialized": '{"by": "db-01"}'})
    other = json.dumps({"name": "db-02", "address": "10.0.0.2"})
    assert not s.take_leadership(other, s.grant(10), "{}")
    view = s.read()
    assert view.leader == {"name": "db-01", "address": "10.0.0.1"} and view.leader_lease == lease
    assert view.last_leader == {"gtid": "0-1-5"} and view.initialized == {"by": "db-01"}
    assert s.leader_lease() == lease


def test_the_leader_key_expires_with_its_lease():
    clock, s = store()
    s.take_leadership(LEADER, s.grant(10), "{}")
    clock.now += 11
    assert s.read().leader is None and s.leader_lease() is None


def test_publishing_as_leader_needs_the_leader_key_to_be_ours():
    _clock, s = store()
    s.publish("db-02", '{"gtid": "0-1-1"}')
    assert not s.publish_leading(LEADER, "db-01", '{"gtid": "0-1-9"}')
    assert s.read().last_leader is None
    s.take_leadership(LEADER, s.grant(10), "{}")
    assert s.publish_leading(LEADER, "db-01", '{"gtid": "0-1-9"}')
    view = s.read()
    assert view.last_leader == {"gtid": "0-1-9"}
    assert view.members == {"db-01": {"gtid": "0-1-9"}, "db-02": {"gtid": "0-1-1"}}


def test_release_and_hand_over_delete_only_our_own_leader_key():
    _clock, s = store()
    lease = s.grant(10)
    s.take_leadership(LEADER, lease, "{}")
    s.release_leadership(json.dumps({"name": "db-02"}), None)
    assert s.read().leader is not None
    s.hand_over(LEADER, lease, {"to": "db-02", "position": "0-1-9"})
    view = s.read()
    assert view.leader is None and view.switchover == {"to": "db-02", "position": "0-1-9"}


def test_operator_requests_and_unreadable_values():
    _clock, s = store()
    s.pause(5.0, "ops", "kernel upgrade", 65.0)
    s.request_switchover("db-02", 6.0)
    view = s.read()
    assert view.paused and view.switchover == {"to": "db-02", "requested": 6.0}
    assert view.pause == {"at": 5.0, "by": "ops", "reason": "kernel upgrade", "until": 65.0}
    s.force_failover("db-03", 7.0)
    assert s.read().switchover == {"to": "db-03", "force": True, "at": 7.0}
    s.resume()
    s.clear_switchover()
    s.client.put(s.keys.member("db-09"), "not json")
    view = s.read()
    assert not view.paused and view.switchover is None and "db-09" not in view.members


def test_the_lease_is_renewed_only_while_it_is_still_the_one_held():
    lease = Lease()
    assert lease.id is None and not lease.valid(0.0, CFG)
    lease.hold(7, 100.0)
    assert lease.valid(107.9, CFG) and not lease.valid(108.0, CFG)
    assert lease.renewed(7, 105.0) and lease.snapshot() == (7, 105.0)
    assert not lease.clear(expected=8) and lease.id == 7
    assert lease.clear(expected=7) and lease.id is None
    # A renewal that finishes after the lease was given up counts for nothing.
    assert not lease.renewed(7, 110.0) and lease.snapshot() == (None, 105.0)
    assert not lease.clear()


def test_the_lease_id_and_its_renewal_time_are_read_together():
    lease, stop, torn = Lease(), threading.Event(), []

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            lease.hold(n, float(n))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _round in range(20000):
            lease_id, renewed = lease.snapshot()
            if lease_id is not None and float(lease_id) != renewed:
                torn.append((lease_id, renewed))
    finally:
        stop.set()
        thread.join()
    assert torn == []


def test_outcomes_are_the_strings_the_status_reports():
    assert Outcome.LEADER == "leader"
    assert json.dumps({"last_step": Outcome.NOT_THE_BEST}) == '{"last_step": "not-the-best"}'
    assert len({o.value for o in Outcome}) == len(Outcome)


def test_the_agent_state_is_typed_and_refuses_unknown_fields():
    state = AgentState()
    assert state.role is Role.STARTING and state.as_dict()["db"] == {"ok": False}
    state.update(role="replica", leader="db-01", lag=0.5)
    assert state.role is Role.REPLICA and state.as_dict()["role"] == "replica"
    with pytest.raises(TypeError, match="no field lead"):
        state.update(lead="db-02")
    with pytest.raises(ValueError):
        state.update(role="leader")
    # A snapshot is a copy: changing it changes nothing in the agent.
    copy = state.as_dict()
    copy["db"]["ok"] = True
    assert state.db == {"ok": False}
