# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HA agents' state in etcd: the key layout, a typed view of it, and every write as a verb.

Keys under `/webinfra/<cluster>/`:

- `leader`: `{"name", "address"}` of the lease holder, attached to its etcd lease;
- `members/<name>`: each agent's last record (position, lag, semi-sync, candidacy, ...);
- `last_leader`: the leader's record as it reported while it led;
- `initialized`: written once by the bootstrap;
- `last_failover`: when, to whom and from whom the last failover went;
- `failovers`: the last FAILOVER_HISTORY of those records, oldest first (an errant former primary
  frozen through more than one failover finds where the first one took over from it);
- `failover_window`: written with each automatic failover under an etcd lease of
  `failover_window` seconds: while it exists no automatic failover runs (etcd's lease clock,
  not the hosts' wall clocks, and it survives an agent's restart);
- `pause`: present while automatic failover is paused;
- `switchover`: a planned switchover (`to`, `requested`; then `position`, `at`, `from` once the
  leader handed over) or a forced failover (`to`, `force`).

Nothing else in the agent names a key or builds a transaction: it calls the verbs below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from webinfra_agents.ha import etcd as etcd_api

EtcdError = etcd_api.EtcdError

# Failover records kept in `failovers`.
FAILOVER_HISTORY = 10


def with_failover(view, record):
    """The `puts` of a failover: its record as `last_failover` and appended to `failovers`."""
    history = [*view.failovers[-(FAILOVER_HISTORY - 1) :], record]
    return {"last_failover": json.dumps(record), "failovers": json.dumps(history)}


def took_over_from(view, name):
    """The newest failover record away from `name` that says where the new leader took over
    (its `position`), from `failovers`, else `last_failover`; None when there is none."""
    records = list(view.failovers)
    if view.last_failover and view.last_failover not in records:
        records.append(view.last_failover)
    for record in reversed(records):
        if record.get("from") == name and record.get("position"):
            return record
    return None


class Keys:
    """The key layout of one cluster."""

    def __init__(self, cluster):
        self.prefix = f"/webinfra/{cluster}/"
        self.leader = self.prefix + "leader"
        self.last_leader = self.prefix + "last_leader"
        self.initialized = self.prefix + "initialized"
        self.last_failover = self.prefix + "last_failover"
        self.failovers = self.prefix + "failovers"
        self.pause = self.prefix + "pause"
        self.switchover = self.prefix + "switchover"
        self.failover_window = self.prefix + "failover_window"
        self.members = self.prefix + "members/"

    def member(self, name):
        return self.members + name


@dataclass
class ClusterView:
    """What one read of the cluster's keys found (values decoded; unreadable ones are None)."""

    leader: dict | None = None
    leader_lease: int | None = None
    members: dict = field(default_factory=dict)
    paused: bool = False
    # The pause key's record ({at, by, reason, until}); `paused` says only that the key exists.
    pause: dict | None = None
    switchover: dict | None = None
    initialized: dict | None = None
    last_failover: dict | None = None
    failovers: list = field(default_factory=list)
    last_leader: dict | None = None
    # etcd's revision of this read, and each member record's mod_revision (liveness and
    # freshness by etcd's revisions, never by comparing the hosts' wall clocks).
    revision: int = 0
    member_revisions: dict = field(default_factory=dict)
    # The last failover's window is still open (its leased key exists).
    window_open: bool = False


def _decode(kv):
    if kv is None:
        return None
    try:
        return json.loads(kv["value"])
    except ValueError:
        return None


class Store:
    """The cluster's keys through one etcd client (each thread of the agent has its own)."""

    def __init__(self, client, cluster):
        self.client = client
        self.keys = Keys(cluster)

    # reads
    def read(self):
        """The whole cluster in one range read (raises EtcdError when etcd does not answer)."""
        revision, kvs = self.client.get_prefix(self.keys.prefix)
        keys = self.keys
        leader_kv = kvs.get(keys.leader)
        members, revisions = {}, {}
        for key, kv in kvs.items():
            if key.startswith(keys.members):
                record = _decode(kv)
                if record is not None:
                    members[key.rsplit("/", 1)[1]] = record
                    revisions[key.rsplit("/", 1)[1]] = kv.get("mod_revision", 0)
        return ClusterView(
            leader=_decode(leader_kv),
            leader_lease=leader_kv.get("lease") if leader_kv else None,
            members=members,
            paused=kvs.get(keys.pause) is not None,
            pause=_decode(kvs.get(keys.pause)),
            switchover=_decode(kvs.get(keys.switchover)),
            initialized=_decode(kvs.get(keys.initialized)),
            last_failover=_decode(kvs.get(keys.last_failover)),
            failovers=[r for r in (_decode(kvs.get(keys.failovers)) or []) if isinstance(r, dict)],
            last_leader=_decode(kvs.get(keys.last_leader)),
            revision=revision,
            member_revisions=revisions,
            window_open=kvs.get(keys.failover_window) is not None,
        )

    def leader_lease(self):
        """The lease the leader key carries now (None: no leader key)."""
        kv = self.client.get(self.keys.leader)
        return None if kv is None else kv.get("lease")

    # leases
    def grant(self, ttl):
        return self.client.grant(ttl)

    def keepalive(self, lease):
        """Seconds left on the lease after renewing it (0: it had expired)."""
        return self.client.keepalive(lease)

    def revoke(self, lease):
        self.client.revoke(lease)

    def lease_left(self, lease):
        """Seconds `lease` has left (-1: gone)."""
        return self.client.time_to_live(lease)

    # a member's own records
    def publish(self, name, record):
        self.client.put(self.keys.member(name), record)

    def publish_leading(self, leader_value, name, record):
        """The leader's record, also as last_leader - only while the leader key is still ours."""
        return self.client.txn(
            [etcd_api.value_is(self.keys.leader, leader_value)],
            [etcd_api.put_op(self.keys.member(name), record), etcd_api.put_op(self.keys.last_leader, record)],
        )

    # leadership
    def take_leadership(self, leader_value, lease, record=None, puts=None, deletes=()):
        """Create the leader key under `lease` if nobody holds it, with last_leader = `record`
        when given (else the last leader's record stays until the new one publishes as leader),
        the extra `puts` ({short name: value, or (value, lease)}: initialized, last_failover,
        failover_window) and `deletes`."""
        ops = [etcd_api.put_op(self.keys.leader, leader_value, lease)]
        if record is not None:
            ops.append(etcd_api.put_op(self.keys.last_leader, record))
        for name, put in (puts or {}).items():
            value, key_lease = put if isinstance(put, tuple) else (put, 0)
            ops.append(etcd_api.put_op(getattr(self.keys, name), value, key_lease))
        ops += [etcd_api.delete_op(getattr(self.keys, name)) for name in deletes]
        return self.client.txn([etcd_api.absent(self.keys.leader)], ops)

    def release_leadership(self, leader_value, lease):
        """Delete the leader key if it is still ours, then revoke the lease."""
        self.client.txn([etcd_api.value_is(self.keys.leader, leader_value)], [etcd_api.delete_op(self.keys.leader)])
        if lease is not None:
            self.client.revoke(lease)

    def hand_over(self, leader_value, lease, switchover):
        """A planned switchover's hand-over: the final position in the switchover key and the
        leader key deleted, in one transaction while the key is ours; then the lease revoked."""
        self.client.txn(
            [etcd_api.value_is(self.keys.leader, leader_value)],
            [etcd_api.put_op(self.keys.switchover, json.dumps(switchover)), etcd_api.delete_op(self.keys.leader)],
        )
        if lease is not None:
            self.client.revoke(lease)

    def open_window(self, value, lease):
        self.client.put(self.keys.failover_window, value, lease)

    # operator requests
    def pause(self, at, by, reason, until):
        self.client.put(self.keys.pause, json.dumps({"at": at, "by": by, "reason": reason, "until": until}))

    def resume(self):
        self.client.delete(self.keys.pause)

    def request_switchover(self, target, at):
        self.client.put(self.keys.switchover, json.dumps({"to": target, "requested": at}))

    def force_failover(self, target, at):
        self.client.put(self.keys.switchover, json.dumps({"to": target, "force": True, "at": at}))

    def clear_switchover(self):
        self.client.delete(self.keys.switchover)
