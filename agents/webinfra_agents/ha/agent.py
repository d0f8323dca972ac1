# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database HA agent: a leader lease in etcd, self-fencing, automatic failover.

One agent runs on every database host (systemd service webinfra-ha-agent, installed by the
mysql_replication role). Every `loop_wait` seconds it reads its own server and the cluster's
keys in etcd, then acts:

- The leader holds the key `<prefix>/leader` under an etcd lease of `ttl` seconds and keeps its
  server writable only while it renewed the lease within `ttl - fence_margin` seconds; past that
  deadline it fences itself (client sessions killed, read_only) before the lease can expire for
  the others. A leader whose server stopped answering releases the key.
- Every other server is read-only and replicates from the leader, re-pointing when it changes.
  A server whose GTID position holds transactions the leader lacks does not replicate (errant):
  it stays read-only and out of the writer pool until it is rebuilt.
- With no leader, only healthy replicas compete that applied their relay log, lagged at most
  `max_lag` seconds and were semi-synchronous; each publishes its final position, the most
  advanced wins through an etcd transaction (ties: the first name), diverged positions refuse.
  No automatic failover within `failover_window` seconds of the last one, or while paused.
- Planned switchover: the key `<prefix>/switchover` names the target; the leader fences itself,
  records its final position and hands over; the target takes the lease once it applied it.

Seams (after Patroni's): `decide` holds the pure decisions (they return enums), `store` the
etcd key layout and every transaction behind verbs with a typed view of the cluster, `lease`
the leader lease and its renewal time behind one lock, `database` the local server, `api` the
HTTP endpoint (/primary, /replica, /health, /status, /metrics and the operator requests). The
Agent class below runs the loop and the keeper and guard threads over them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time

from webinfra_agents.ha import etcd as etcd_api
from webinfra_agents.ha import store as store_mod
from webinfra_agents.ha.api import Api, control_request, make_handler
from webinfra_agents.ha.database import Database, not_running
from webinfra_agents.ha.decide import (
    SWITCHOVER_MAX_AGE,
    Choice,
    Follow,
    Outcome,
    StallWatch,
    check_config,
    choose,
    eligibility,
    follow_decision,
    known_lag,
    lease_valid,
    pause_active,
    received,
    relay_applied,
    replica_lag,
    replicated,
    silence_limit_ms,
    switchover_pending,
)
from webinfra_agents.ha.lease import Lease
from webinfra_agents.ha.local import LocalState
from webinfra_agents.ha.rejoin import RejoinRefused, Rewind
from webinfra_agents.ha.restart import restart_main
from webinfra_agents.ha.state import AgentState, Role
from webinfra_agents.ha.store import EtcdError, Store
from webinfra_agents.kit.daemon import log, sd_notify
from webinfra_agents.kit.http import LimitedHTTPServer

DEFAULTS = {
    "cluster": "webinfra",
    "ttl": 10,
    "loop_wait": 1,
    "max_lag": 30,
    "failover_window": 300,
    "semisync": True,
    "socket": "/run/mysqld/mysqld.sock",
    "listen": "127.0.0.1",
    "port": 3308,
    # Operator requests (pause, resume, switchover, failover): root only, on the host itself.
    "control_socket": "/run/webinfra-ha-agent/control.sock",
    # The longest pause of automatic failover an operator may ask for (seconds).
    "pause_max": 3600,
    # systemd's WatchdogSec for the agent (the unit renders the same value).
    "watchdog": 3,
    # A leader whose client sessions wait this long for a global read lock, the commit lock or
    # disk space gives the lease up (0: never).
    "write_stall": 7,
    # How long a new leader may apply the transactions it received before it is made writable.
    "apply_timeout": 120,
    # The agent's own state across restarts and etcd's state loss (ha.local).
    "state_file": None,
    # An errant former primary rolls its unacknowledged transactions back and rejoins by itself
    # (ha.rejoin), saving them for audit in rejoin_dir; false: it waits for rebuild.yml.
    "rejoin": True,
    "rejoin_dir": "/var/lib/webinfra-ha-agent/errant",
    "etcd": None,
    "peers": {},
}
ERRANT_IO_ERRNOS = (1236,)  # the source's binary log lacks what this server has
NUDGE_INTERVAL = 10  # seconds between two statements that make an idle leader's replicas acknowledge
HURRY_INTERVAL = 0.1  # seconds between rounds of a switchover's target
CANDIDATE_INTERVAL = 0.25  # seconds between rounds of a candidate (the election is the write window)
STALL_HOLD_OFF = 3  # x ttl: a leader that gave its lease up over a write stall does not compete again
WATCHDOG_PING = 0.5  # seconds between two WATCHDOG=1 of the guard thread
SWITCHOVER_ACK_WAIT = 5  # seconds the leader waits for the target to see a switchover request
ABORT_FENCE_WAIT = 1.0  # seconds the watchdog's handler waits for its fence before exiting
EXIT_WATCHDOG = 1  # the exit status after systemd's watchdog signal (systemd: watchdog, FAILURE)


class Agent:
    def __init__(
        self,
        cfg,
        etcd=None,
        db=None,
        clock=time.monotonic,
        wall=time.time,
        keeper_etcd=None,
        fence_db=None,
    ):
        self.cfg = dict(DEFAULTS, **cfg)
        self.me = self.cfg["name"]
        self.store = Store(etcd, self.cfg["cluster"])
        self.db = db or Database(self.cfg)
        # The lease is renewed, and its deadline enforced, by a thread of its own with its own etcd
        # client and database connection: a round blocked in a slow statement (a promotion waiting
        # on a dead primary's connection) neither lets the lease lapse nor delays the fencing.
        self.keeper_store = Store(keeper_etcd or etcd, self.cfg["cluster"])
        self.fence_db = fence_db or self.db
        self.clock, self.wall = clock, wall
        # The lease this agent holds and when its last renewal started, behind the lease's lock.
        self.leadership = Lease()
        # The agent's state (its /status), behind this lock.
        self.lock = threading.Lock()
        # One fence at a time on fence_db (the guard thread, the main loop past the deadline, the
        # watchdog's abort): a PyMySQL connection used by two threads at once breaks, and a broken
        # fence ends in the last resort (the server killed).
        self.fence_lock = threading.Lock()
        self.state = AgentState()
        self.counters = {"failovers": 0, "fences": 0, "switchovers": 0, "silent_replicas_cut": 0, "rejoins": 0}
        self.last_lag = None
        self.candidate_since = None
        self.db_failures = 0
        self.blocked = ""
        self.running = True
        # A switchover request wakes the main loop at once; a switchover's target polls fast
        # until it holds the lease (the write window is the hand-over, not the loop interval).
        self.wake = threading.Event()
        self.hurry = False
        self.seen = None
        self.nudged_at = float("-inf")
        self.forgotten_logged = None
        self.local = LocalState(self.cfg.get("state_file"), clock)
        self.state.errant = self.local.get("errant") or ""
        # Peers' liveness from etcd's revisions of their records: {name: (mod_revision, when it
        # last changed on this agent's own monotonic clock)}.
        self.peer_revisions = {}
        # The etcd revision at which this candidate saw no leader (peers that published after it
        # published their final position).
        self.candidate_revision = None
        self.started_at = clock()
        self.no_init_since = None
        self.stall_until = None
        # The lease of the last leader key this agent saw: a key deleted (not expired) leaves its
        # lease running, and its holder writable - no candidate takes over until it is gone.
        self.seen_leader_lease = None
        # etcd's highest revision this agent read, and when (own monotonic clock) it found etcd's
        # revision gone back: a re-created etcd (a new cluster, every data directory wiped, a
        # snapshot restored) forgot the last leader's lease, which may still run on its holder.
        self.etcd_revision = 0
        self.etcd_forgot_at = None
        self.stall_watch = StallWatch(self.cfg.get("write_stall"))
        self.round_ended = clock()
        self.api = Api(self)

    @property
    def lease(self):
        """The id of the lease this agent holds (None: none)."""
        return self.leadership.id

    @lease.setter
    def lease(self, value):
        if value is None:
            self.leadership.clear()
        else:
            self.leadership.hold(value, self.clock())

    def snapshot(self):
        """A copy of the agent's state, read under its lock."""
        with self.lock:
            return self.state.as_dict()

    def record(self, db, **extra):
        replica = db.get("replica") or {}
        out = {
            "name": self.me,
            "address": self.cfg["address"],
            "updated": self.wall(),
            "ok": db.get("ok", False),
            "read_only": db.get("read_only", True),
            "gtid": db.get("gtid", ""),
            "lag": self.last_lag,
            "semisync": db.get("semisync", False),
            "replicas": db.get("semisync_clients", 0),
            "io_running": replica.get("io_running", False),
            "errant": self.state.errant,
            "received": received(db) if db.get("ok") else None,
            "history": bool(self.local.get("history")),
        }
        if self.seen is not None:
            out["switchover_seen"] = self.seen
        out.update(extra)
        return json.dumps(out, sort_keys=True)

    def publish(self, db, **extra):
        try:
            self.store.publish(self.me, self.record(db, **extra))
        except EtcdError:
            pass

    def publish_leading(self, db):
        """The leader's record, also as `last_leader` (only while the leader key is ours): the
        candidates judge the last leader by what it reported while it led, which its later
        records (read-only, stopped, restarted) must not overwrite."""
        try:
            self.store.publish_leading(self.leader_value(), self.me, self.record(db))
        except EtcdError:
            pass

    def fence(self, reason, db=None, last_resort=False):
        """Make the server read-only (client sessions ended). Only a server that may still be
        writable because this agent held the lease (`last_resort`) is killed when that fails; a
        server that does not accept connections takes no writes and starts read-only."""
        db = db or self.db
        if db is self.fence_db:
            with self.fence_lock:
                self._fence(reason, db, last_resort)
        else:
            self._fence(reason, db, last_resort)

    def _fence(self, reason, db, last_resort):
        db_state = self.state.db
        if db_state.get("ok") and db_state.get("read_only"):
            return
        log("fencing: %s" % reason)
        self.counters["fences"] += 1
        try:
            if db.fence():
                self.set_state(db=dict(db_state, read_only=True))
                return
        except Exception as exc:  # pylint: disable=broad-except
            log("fencing by SQL failed: %s" % exc)
            if not_running(exc):
                return
        if last_resort:
            db.last_resort()

    def effective_pause(self, view):
        """Whether automatic failover is paused: the pause key holds a pause that has not expired.
        An expired pause is deleted (every agent may: the delete is idempotent) and logged."""
        if view is None or not view.paused:
            return False
        if pause_active(view.pause or {}, self.wall(), self.cfg["pause_max"]):
            if view.pause != self.state.pause:
                log("automatic failover paused: %s" % json.dumps(view.pause, sort_keys=True))
            return True
        log("the pause of automatic failover expired (%s)" % json.dumps(view.pause, sort_keys=True))
        try:
            self.store.resume()
        except EtcdError:
            pass
        view.paused = False
        return False

    def set_state(self, **values):
        with self.lock:
            self.state.update(**values)

    # the loop
    def step(self):
        db = self.db.observe()
        self.set_state(db=db)
        try:
            view, etcd_ok = self.store.read(), True
        except EtcdError as exc:
            view, etcd_ok = None, False
            self.set_state(etcd_error=str(exc))
        if view is not None:
            self.note_etcd_revision(view)
            self.note_revisions(view)
            healthy = sorted(
                name
                for name, rec in view.members.items()
                if name != self.me
                and self.live(name)
                and rec.get("ok")
                and rec.get("io_running")
                and not rec.get("errant")
                and rec.get("read_only", True)
            )
            self.set_state(replicas_healthy=healthy)
        # Unreadable keys count as absent (a leader key that does not decode is no leader).
        leader = view.leader if view else None
        if leader is not None:
            self.no_init_since = None
            self.seen_leader_lease = view.leader_lease
            if leader.get("name") != self.me:
                self.local.set(history=True)
        paused = self.effective_pause(view)
        self.set_state(paused=paused, pause=view.pause if paused else None, etcd_ok=etcd_ok)
        switchover = view.switchover if view else None
        # Every agent polls fast while a switchover is pending; its target says it saw it.
        self.hurry = switchover_pending(switchover, self.wall())
        self.seen = (switchover or {}).get("requested") if self.hurry and switchover.get("to") == self.me else None

        if self.leadership.id is not None:
            return self.lead(db, etcd_ok, leader, view)
        if not etcd_ok:
            self.set_state(role=Role.UNKNOWN, leader=None)
            if db.get("ok") and not db.get("read_only"):
                self.fence("etcd unreachable and this server holds no lease")
            return Outcome.NO_ETCD
        if leader is not None and leader.get("name") == self.me:
            # Our key from before a restart, or from before etcd was unreachable: adopt its lease.
            try:
                started = self.clock()
                if self.store.keepalive(view.leader_lease) > 0:
                    self.leadership.hold(view.leader_lease, started)
                    log("adopted the leader lease %s" % view.leader_lease)
                    return self.lead(db, True, leader, view)
            except EtcdError:
                pass
            return Outcome.ADOPT_FAILED
        if leader is not None:
            return self.follow(db, leader, view.members, store_mod.took_over_from(view, self.me))
        return self.compete(db, view)

    def note_etcd_revision(self, view):
        """etcd's revision only grows; one lower than this agent read before means etcd lost its
        state (its leases with it): noted, so that no candidate takes over before the last
        leader's lease would have run out on its holder (`amnesia_left`)."""
        if view.revision < self.etcd_revision:
            log(
                "etcd's revision went back from %d to %d: etcd lost its state (re-created?); "
                "no failover for %s s (the last leader's lease)" % (self.etcd_revision, view.revision, self.cfg["ttl"])
            )
            self.etcd_forgot_at = self.clock()
        self.etcd_revision = (
            view.revision if view.revision < self.etcd_revision else max(self.etcd_revision, view.revision)
        )
        if view.leader is not None:
            self.etcd_forgot_at = None

    def amnesia_left(self):
        """Seconds until the lease of a leader that etcd forgot has run out for sure: its holder
        renewed at the latest when etcd lost its state, and fences ttl - loop_wait - 1 s after its
        last renewal; a full ttl from when this agent noticed covers it (0: nothing forgotten)."""
        if self.etcd_forgot_at is None:
            return 0
        left = float(self.cfg["ttl"]) - (self.clock() - self.etcd_forgot_at)
        if left <= 0:
            self.etcd_forgot_at = None
            return 0
        return left

    def note_revisions(self, view):
        now = self.clock()
        for name, revision in view.member_revisions.items():
            seen = self.peer_revisions.get(name)
            if seen is None or seen[0] != revision:
                self.peer_revisions[name] = (revision, now)

    def live(self, name):
        """Whether `name`'s agent published within the last 2 x loop_wait + 2 s (by this agent's
        own clock: its record's revision changed; a record never seen change counts as live
        until that long after this agent first read it)."""
        seen = self.peer_revisions.get(name)
        return seen is not None and self.clock() - seen[1] <= 2 * float(self.cfg["loop_wait"]) + 2

    def lead(self, db, etcd_ok, leader, view):
        members = view.members if view else {}
        switchover = view.switchover if view else None
        if etcd_ok and leader is None and self.leadership.valid(self.clock(), self.cfg):
            # The key vanished while this agent's lease is valid: etcd lost its state (a
            # re-created cluster, a wiped data directory) or someone deleted it. This server is
            # the writer and has every acknowledged write: it takes the key back at once.
            if not self.reclaim(db, view):
                self.leadership.clear()
                self.fence("the leader key vanished and could not be taken back")
                self.set_state(role=Role.REPLICA, leader=None)
                return Outcome.LOST
            leader = json.loads(self.leader_value())
        if etcd_ok and (leader is None or leader.get("name") != self.me):
            self.leadership.clear()
            self.fence("the leader key is gone or names %s" % (leader or {}).get("name"))
            self.set_state(role=Role.REPLICA, leader=(leader or {}).get("name"))
            return Outcome.LOST
        if not self.leadership.valid(self.clock(), self.cfg):
            self.drop_lease("could not renew the leader lease in time")
            return Outcome.FENCED
        if not db["ok"]:
            self.db_failures += 1
            if self.db_failures >= 2:
                self.release("the database server does not answer: %s" % db.get("error"))
                return Outcome.RELEASED
            return Outcome.DB_DOWN
        self.db_failures = 0
        stuck = self.write_stalled(db)
        if stuck:
            self.stall_until = self.clock() + STALL_HOLD_OFF * float(self.cfg["ttl"])
            self.release(
                "writes stalled: %d client sessions waited over %s s (%s)"
                % (len(stuck), self.cfg["write_stall"], stuck[0].get("state"))
            )
            return Outcome.RELEASED
        if switchover and switchover.get("to") not in (None, self.me) and "position" not in switchover:
            return self.hand_over(switchover, members)
        # Semi-sync waits only once a replica is connected: a new leader whose old primary is
        # gone commits at once (asynchronously; the candidates' rule covers that state).
        semisync = replicated(self.cfg) and db.get("replicas_connected", 0) > 0
        still_replica = (db.get("replica") or {}).get("sql_running")
        if db["read_only"] or still_replica or (semisync and not db.get("semisync_enabled")):
            enabling = semisync and not db.get("semisync_enabled") and not db["read_only"]
            self.db.promote(semisync)
            if enabling:
                # Replicas that connected while semi-sync was off never acknowledge (MariaDB
                # registers a semi-sync replica when its dump starts): they reconnect at once.
                addresses = [rec.get("address") for name, rec in members.items() if name != self.me]
                for address in self.db.end_dump_threads(addresses):
                    log("semi-sync on: %s reconnects as a semi-synchronous replica" % address)
            db = self.db.observe()
            self.set_state(db=db)
        idle = semisync and db.get("semisync_enabled") and db.get("semisync_clients", 0) > 0 and not db.get("semisync")
        if idle and self.clock() - self.nudged_at >= NUDGE_INTERVAL:
            # Semi-sync turns on only when a replica acknowledges a transaction: an idle leader
            # would count as asynchronous (and never be replaced automatically) until the next write.
            self.nudged_at = self.clock()
            try:
                self.db.nudge_semisync()
            except Exception as exc:  # pylint: disable=broad-except
                log("semi-sync confirmation: %s" % exc)
        if db.get("replicas_connected"):
            try:
                for address in self.db.end_silent_dump_threads(silence_limit_ms(self.cfg)):
                    log("ended the binlog dump thread of %s: the replica stopped acknowledging" % address)
                    self.counters["silent_replicas_cut"] += 1
            except Exception as exc:  # pylint: disable=broad-except
                log("checking the replicas' connections: %s" % exc)
        self.set_state(role=Role.PRIMARY, leader=self.me, errant="")
        self.local.set(history=True, errant="", errant_gtid=None)
        self.publish_leading(db)
        return Outcome.LEADER

    def write_stalled(self, db):
        """The client sessions of a write stall (decide.StallWatch); [] when none or unknown."""
        if self.stall_watch.limit <= 0:
            return []
        try:
            return self.stall_watch.observe(self.clock(), self.db.processlist(), db.get("binlog"))
        except Exception as exc:  # pylint: disable=broad-except
            log("reading the sessions' states: %s" % exc)
            return []

    def reclaim(self, db, view):
        """Take the vanished leader key back: under the lease still held, else (a re-created
        etcd forgot it) under a new one; `initialized` too when it is gone."""
        lease = self.leadership.id
        try:
            started = self.clock()
            try:
                alive = self.store.keepalive(lease) > 0
            except EtcdError:
                alive = False  # a re-created etcd does not know the lease
            if not alive:
                lease, started = self.store.grant(self.cfg["ttl"]), self.clock()
            puts = {}
            if view.initialized is None:
                puts["initialized"] = json.dumps({"by": self.me, "at": self.wall(), "restored": True})
            if not self.store.take_leadership(self.leader_value(), lease, self.record(db), puts):
                return False
        except EtcdError as exc:
            log("taking the vanished leader key back: %s" % exc)
            return False
        self.leadership.hold(lease, started)
        log("the leader key had vanished (etcd lost its state?): taken back under lease %s" % lease)
        return True

    def renew(self):
        """One renewal of the leader lease (the keeper thread; the unit tests call it per round)."""
        lease = self.leadership.id
        if lease is None:
            return None
        started = self.clock()
        try:
            left = self.keeper_store.keepalive(lease)
        except EtcdError as exc:
            left = None
            log("lease renewal failed: %s" % exc)
        if left:
            if not self.leadership.renewed(lease, started):
                return None
        elif self.leadership.id != lease:
            return None
        gone = self.lease_gone(lease) if left == 0 else ""
        if gone == "expired":
            self.drop_lease("the leader lease expired", lease)
        elif gone == "forgotten":
            # Not expired: etcd lost its state (re-created, its data wiped) or the lease was
            # revoked with the key. The main loop takes the key back under a new lease (reclaim);
            # should it not in time, the deadline below fences as for any failed renewal.
            if self.forgotten_logged != lease:  # once per lease: the keeper renews every half second
                self.forgotten_logged = lease
                log(
                    "etcd does not know the leader lease %s, valid by this agent's renewals: etcd lost its state?"
                    % lease
                )
            if not lease_valid(self.leadership.renewed_at, self.clock(), self.cfg):
                self.drop_lease("could not renew the leader lease in time", lease)
        elif not lease_valid(self.leadership.renewed_at, self.clock(), self.cfg):
            self.drop_lease("could not renew the leader lease in time", lease)
        return left

    def lease_gone(self, lease):
        """Why a keepalive answered without a TTL: "" when it is not known (also seen while etcd
        elects a new raft leader: the deadline decides), "expired" when the leader key carries
        another lease, "forgotten" when the key is gone while the lease is still valid by this
        agent's renewals (a lease expires in etcd no sooner than a ttl after the last renewal this
        agent started, and this agent's deadline is loop_wait + 1 s before that)."""
        try:
            holder = self.keeper_store.leader_lease()
        except EtcdError:
            return ""
        if holder == lease:
            return ""
        if holder is None and lease_valid(self.leadership.renewed_at, self.clock(), self.cfg):
            return "forgotten"
        return "expired"

    def drop_lease(self, reason, lease=None):
        """Give up the lease we believe we hold and fence the server (from any thread)."""
        if lease is not None:
            if not self.leadership.clear(expected=lease):
                return
        else:
            self.leadership.clear()
        self.set_state(role=Role.REPLICA, leader=None)
        self.fence(reason, db=self.fence_db, last_resort=True)

    def abort(self, reason):
        """The agent is about to be killed (systemd's watchdog, after a hang or when its frozen
        host resumes): fence now. Left to the unit's ExecStopPost, the fence would wait for the
        process to be gone and a client to start, seconds on a loaded host."""
        self.running = False
        if self.leadership.id is not None:
            self.drop_lease(reason)
        else:
            self.fence(reason, db=self.fence_db)

    def guard(self):
        """Fence as soon as the lease deadline passes, whatever the renewal calls are waiting on
        (a keepalive to an unreachable etcd may take its timeout per endpoint)."""
        lease, renewed = self.leadership.snapshot()
        if lease is not None and not lease_valid(renewed, self.clock(), self.cfg):
            self.drop_lease("could not renew the leader lease in time", lease)
            return True
        return False

    def guards(self):
        pinged = float("-inf")
        while self.running:
            try:
                self.guard()
            except Exception as exc:  # pylint: disable=broad-except
                log("lease guard: %s" % exc)
            now = self.clock()
            if now - pinged >= WATCHDOG_PING and self.alive(now):
                # systemd's watchdog hears from the guard (it must run for the fence to come in
                # time), and only while the main loop makes progress too.
                sd_notify("WATCHDOG=1")
                pinged = now
            time.sleep(0.1)

    def alive(self, now):
        """The main loop ended a round recently enough (its database and etcd calls time out)."""
        return now - self.round_ended <= max(30.0, 3 * float(self.cfg["ttl"]))

    def keep(self):
        while self.running:
            try:
                self.renew()
            except Exception as exc:  # pylint: disable=broad-except
                log("lease keeper: %s" % exc)
            time.sleep(max(0.2, float(self.cfg["loop_wait"]) / 2))

    def release(self, reason):
        log("releasing leadership: %s" % reason)
        try:
            self.store.release_leadership(self.leader_value(), self.leadership.id)
        except EtcdError:
            pass
        self.leadership.clear()
        try:
            self.fence(reason)
        except Exception as exc:  # pylint: disable=broad-except
            log("fencing after the release failed: %s" % exc)
        self.set_state(role=Role.REPLICA, leader=None)

    def leader_value(self):
        return json.dumps({"name": self.me, "address": self.cfg["address"]}, sort_keys=True)

    def hand_over(self, switchover, members):
        target = switchover["to"]
        record = members.get(target) or {}
        fresh = record.get("updated", 0) > self.wall() - 3 * float(self.cfg["ttl"])
        if not fresh or not record.get("ok") or record.get("errant") or not record.get("io_running"):
            log("switchover to %s refused: it is not a healthy replicating member" % target)
            try:
                self.store.clear_switchover()
            except EtcdError:
                pass
            return Outcome.SWITCHOVER_REFUSED
        waited = self.wall() - float(switchover.get("requested") or 0)
        if record.get("switchover_seen") != switchover.get("requested") and waited < SWITCHOVER_ACK_WAIT:
            # The target polls fast once it saw the request: hand over then, so that the write
            # window does not include the target's loop interval.
            return Outcome.SWITCHOVER_WAITING
        log("switchover to %s: fencing, then handing over" % target)
        self.fence("planned switchover to %s" % target)
        self.db.stop_replication()
        final = self.db.observe()
        hand = dict(switchover, position=final.get("gtid", ""), at=self.wall(), **{"from": self.me})
        try:
            self.store.hand_over(self.leader_value(), self.leadership.id, hand)
        except EtcdError as exc:
            log("switchover hand-over failed: %s" % exc)
        self.leadership.clear()
        self.counters["switchovers"] += 1
        self.set_state(role=Role.REPLICA, leader=None)
        return Outcome.HANDED_OVER

    def follow(self, db, leader, members, last_failover=None):
        self.candidate_since = self.candidate_revision = None
        name = leader.get("name")
        self.set_state(role=Role.REPLICA, leader=name)
        if not db["ok"]:
            return Outcome.DB_DOWN
        if not db["read_only"]:
            self.fence("%s holds the leader lease" % name)
            db = self.db.observe()
        if db.get("replicas_connected", 0) > 0:
            # Left from this server's last leadership: ended now, while its semi-sync is off.
            for stale in self.db.end_stale_dump_threads():
                log("ended the stale binlog dump thread of %s (%s leads)" % (stale, name))
        replica = db.get("replica")
        address = leader.get("address")
        pointed = replica is not None and replica.get("source_host") == address
        if self.state.errant and self.local.get("errant_gtid") not in (None, db["gtid"]):
            # Errant at another position: the server was rebuilt or rolled back since; judge again.
            log("the position changed since it was found errant (%s): judged again" % db["gtid"])
            self.set_errant("")
        if self.state.errant and self.rejoin(db, members.get(name) or {}, last_failover):
            db, replica, pointed = self.replicate_after_rejoin(address)
        if pointed and replica.get("last_io_errno") in ERRANT_IO_ERRNOS:
            self.db.stop_replication()
            errant = "the leader's binary log lacks this server's transactions: %s (%s)" % (
                db["gtid"],
                replica.get("last_io_error"),
            )
            self.set_errant(errant, db["gtid"])
        elif not pointed and replica is None and not db["gtid"]:
            # A new server: the role seeds it first (a dump, or replication from the start).
            self.set_state(role=Role.NEW)
        elif not pointed and not self.state.errant:
            leader_record = members.get(name) or {}
            if leader_record.get("read_only", True):
                # Its record from before it took the key (its position then): wait for the
                # leader's own, or a server that is ahead of that old position looks errant.
                verdict, detail = Follow.WAIT, ""
            else:
                verdict, detail = follow_decision(db["gtid"], leader_record.get("gtid", ""))
            if verdict == Follow.WAIT:
                log("waiting for the new leader %s to publish its position" % name)
            elif verdict == Follow.ERRANT:
                self.set_errant(detail, db["gtid"])
            else:
                log("replicating from the leader %s (%s)" % (name, address))
                result = self.db.follow(address, fresh_start=replica is None or not replica.get("source_host"))
                if result.get("error"):
                    log("replication from %s: %s" % (name, result["error"]))
                db = self.db.observe()
        # Pointed at the leader: threads an operator stopped (or that stopped on an error) are left
        # alone - MariaDB retries a lost connection by itself.
        replica = db.get("replica") or {}
        self.last_lag = replica_lag(db, (members.get(name) or {}).get("gtid"), self.last_lag)
        self.set_state(db=db, lag=self.last_lag)
        leader_record = members.get(name)
        if leader_record and not leader_record.get("read_only", True):
            self.local.set(urgent=False, history=True, last_leader=leader_record, lag=self.last_lag)
        self.publish(db)
        return Outcome.ERRANT if self.state.errant else Outcome.FOLLOWER

    def rejoin(self, db, leader_record, last_failover):
        """Roll this errant former primary's transactions back and reset its binary log to where
        the new leader took over (rejoin.py); True when done. A refusal is logged and not tried
        again at this position (rebuild.yml re-seeds the server)."""
        if not self.cfg.get("rejoin", True) or self.local.get("rejoin_refused") == db["gtid"]:
            return False
        if leader_record.get("read_only", True) or not leader_record.get("gtid"):
            return False  # the leader's own record (its position) first
        try:
            self.db.stop_replication()
            done = Rewind(self.db, self.cfg["rejoin_dir"]).rejoin(
                (last_failover or {}).get("position") or "", leader_record, last_failover, self.me
            )
        except (RejoinRefused, OSError, subprocess.SubprocessError) as exc:
            log("errant, not rolled back by itself (rebuild.yml re-seeds it): %s" % exc)
            self.local.set(rejoin_refused=db["gtid"])
            self.set_errant(
                "%s; not rolled back: %s" % (self.state.errant.split("; not rolled back")[0], exc), db["gtid"]
            )
            return False
        except Exception as exc:  # pylint: disable=broad-except
            log("errant, the roll-back failed (tried again next round): %s" % exc)
            self.db.close()
            return False
        self.counters["rejoins"] += 1
        log(
            "rejoined: rolled back %d errant transaction(s) %s, saved in %s; replicating from %s"
            % (done["transactions"], done["gtids"], done["audit"], done["leader"])
        )
        self.set_errant("")
        self.local.set(rejoin_refused=None)
        return True

    def replicate_after_rejoin(self, address):
        """(db, replica, pointed) once the rolled-back server replicates from the leader again."""
        result = self.db.follow(address, fresh_start=False)
        if result.get("error"):
            log("replication from %s after the roll-back: %s" % (address, result["error"]))
        db = self.db.observe()
        replica = db.get("replica")
        return db, replica, replica is not None and replica.get("source_host") == address

    def set_errant(self, errant, position=None):
        """Record (or clear) the server's errant state, in memory and durably."""
        if errant and errant != self.state.errant:
            log("errant: %s" % errant)
        self.set_state(errant=errant)
        self.local.set(errant=errant, errant_gtid=position if errant else None)

    def compete(self, db, view):  # noqa: PLR0911,PLR0912,PLR0915 - one branch per kind of election
        members = view.members
        self.set_state(role=Role.CANDIDATE, leader=None)
        if db.get("ok") and not db["read_only"]:
            self.fence("no leader holds the lease")
            db = self.db.observe()
        if view.initialized is None and not self.local.get("history"):
            return self.bootstrap(db, view)
        switchover = view.switchover
        if switchover and switchover.get("force") and switchover.get("to") == self.me:
            # An operator's choice (failover.yml while paused): no eligibility rules, but the relay log first.
            if not relay_applied((db or {}).get("replica")):
                return Outcome.FORCED_CATCHING_UP
            extra = store_mod.with_failover(view, {"at": self.wall(), "to": self.me, "forced": True})
            return self.acquire(db, extra, Outcome.FORCED_FAILOVER, delete=["switchover"])
        handed = switchover and switchover.get("position") is not None
        if handed and switchover.get("at", 0) > self.wall() - SWITCHOVER_MAX_AGE:
            if switchover.get("to") != self.me:
                return Outcome.WAITING_SWITCHOVER
            if not self.db.wait_applied(switchover["position"], max(1, int(self.cfg["loop_wait"]))):
                return Outcome.SWITCHOVER_CATCHING_UP
            return self.acquire(db, {}, Outcome.SWITCHOVER, delete=["switchover"])
        if view.paused:
            self.blocked = "paused"
            self.publish(db)
            return Outcome.PAUSED
        leader_record = self.last_leader_record(view)
        mine = received(db) if db.get("ok") else None
        own = members.get(self.me) or {}
        lag = known_lag(self.last_lag, mine, leader_record, own.get("lag", self.local.get("lag")))
        ok, reason = eligibility(db, self.state.errant, lag, leader_record, self.cfg, view.window_open)
        if ok and self.stall_until is not None and self.clock() < self.stall_until:
            ok, reason = False, "this server gave the lease up over a write stall"
        self.set_state(blocked=reason)
        if not ok:
            if reason != self.blocked:
                log("may not take over: %s" % reason)
            self.blocked = reason
            self.candidate_revision = None
            self.publish(db, candidate=False, blocked=reason)
            return Outcome.INELIGIBLE
        self.blocked = ""
        self.hurry = True
        if self.candidate_revision is None:
            # First round: publish the final position; compare once every live peer published after this.
            self.candidate_revision = view.revision
            self.candidate_since = self.clock()
            self.publish(db, candidate=True)
            return Outcome.CANDIDATE
        self.publish(db, candidate=True)
        previous = (leader_record or {}).get("name")
        peers = {}
        for name, record in members.items():
            if name in (self.me, previous) or not self.live(name):
                continue
            peers[name] = {
                "received": record.get("received") if record.get("ok") else None,
                "candidate": bool(record.get("candidate")),
                "final": view.member_revisions.get(name, 0) > self.candidate_revision,
            }
        verdict, detail = choose(self.me, mine, peers)
        if verdict == Choice.DIVERGED:
            self.blocked = "diverged GTID positions among the candidates: %s" % detail
            log(self.blocked)
            return Outcome.DIVERGED
        if verdict == Choice.WAIT:
            if detail != self.state.blocked:
                log("not taking over yet: %s" % detail)
            self.set_state(blocked=detail)
            return Outcome.NOT_THE_BEST
        forgotten = self.amnesia_left()
        if forgotten > 0:
            self.set_state(
                blocked="etcd lost its state (its revision went back): the last leader may still hold "
                "its lease for %d s" % math.ceil(forgotten)
            )
            return Outcome.NOT_THE_BEST
        if self.seen_leader_lease:
            try:
                left = self.store.lease_left(self.seen_leader_lease)
            except EtcdError:
                left = 1  # unknown: not now
            if left > 0:
                self.set_state(
                    blocked="the last leader's lease still runs (%d s): its key was deleted, not expired" % left
                )
                return Outcome.NOT_THE_BEST
            self.seen_leader_lease = None
        # `position`: where this server takes over (what it received): the old leader's
        # transactions after it were never acknowledged, and are rolled back when it rejoins.
        extra = store_mod.with_failover(view, {"at": self.wall(), "to": self.me, "from": previous, "position": mine})
        if float(self.cfg["failover_window"]) > 0:
            extra["failover_window"] = json.dumps({"at": self.wall(), "to": self.me})
        if view.initialized is None:
            extra["initialized"] = json.dumps({"by": self.me, "at": self.wall(), "restored": True})
        return self.acquire(db, extra, Outcome.FAILOVER, received_position=mine)

    def last_leader_record(self, view):
        """What the last leader reported while it led: etcd's last_leader (a record without a
        position is the bare name written when it took the key: its member record then), else
        this agent's own copy (etcd lost its state)."""
        previous = view.last_leader
        if previous:
            return previous if "gtid" in previous else view.members.get(previous.get("name"))
        return self.local.get("last_leader")

    def bootstrap(self, db, view):
        """A cluster no agent has seen led: the configured bootstrap server takes the lease, once
        it waited 2 x loop_wait + 2 s and no live peer's record says it saw the cluster led (etcd
        lost its state: an election by position, never a bootstrap)."""
        if self.no_init_since is None:
            self.no_init_since = self.clock()
        if self.me != self.cfg.get("bootstrap") or not db.get("ok"):
            return Outcome.WAITING_BOOTSTRAP
        if self.clock() - self.no_init_since < 2 * float(self.cfg["loop_wait"]) + 2:
            self.publish(db)
            return Outcome.WAITING_BOOTSTRAP
        seen = sorted(n for n, r in view.members.items() if n != self.me and r.get("history") and self.live(n))
        if seen:
            self.local.set(history=True)
            log("no cluster state in etcd, but %s saw the cluster led: an election, not a bootstrap" % ", ".join(seen))
            return Outcome.WAITING_BOOTSTRAP
        initialized = json.dumps({"by": self.me, "at": self.wall()})
        return self.acquire(db, {"initialized": initialized}, Outcome.BOOTSTRAP)

    def acquire(self, db, extra_puts, why, delete=(), received_position=None):
        """Take the leader key (`why`: the Outcome of taking it) with the extra keys given; a
        failover's new leader then applies what it received before it is made writable."""
        extra_puts = dict(extra_puts)
        window = extra_puts.pop("failover_window", None)
        try:
            lease = self.store.grant(self.cfg["ttl"])
            started = self.clock()
            # last_leader keeps the previous leader's record until this server publishes as the
            # leader, once writable: a new leader that gives the key up before (its relay log
            # would not apply) leaves the candidates judging the leader that took the writes.
            if not self.store.take_leadership(self.leader_value(), lease, None, extra_puts, delete):
                self.store.revoke(lease)
                return Outcome.LOST_RACE
        except EtcdError as exc:
            log("could not take the leader key: %s" % exc)
            return Outcome.ACQUIRE_FAILED
        self.leadership.hold(lease, started)
        self.candidate_since = self.candidate_revision = None
        self.hurry = False
        self.local.set(history=True)
        if why == Outcome.FAILOVER:
            self.counters["failovers"] += 1
        log("took the leader key (%s)" % why)
        took = self.clock()
        if received_position and db.get("replica") is not None:
            # Every transaction this server received (a replica acknowledges what is in its relay
            # log) is applied before it takes writes: the keeper renews the lease meanwhile.
            drained = self.db.drain(received_position, float(self.cfg["apply_timeout"]))
            if not drained:
                self.release("could not apply the received transactions (%s) in time" % received_position)
                return Outcome.ACQUIRE_FAILED
            log("applied what it received (%s) in %.2f s" % (received_position, self.clock() - took))
        connected = db.get("replicas_connected", 0)
        if why != Outcome.BOOTSTRAP and connected > 0:
            # Left from an earlier leadership (the replicas connect only once they see the new
            # key): ended before semi-sync is turned on (Database.end_stale_dump_threads).
            for address in self.db.end_stale_dump_threads():
                log("ended the stale binlog dump thread of %s" % address)
            connected = 0
        # Semi-sync at once after a switchover (the former leader connects within a second, as a
        # semi-synchronous replica: no dump thread to restart) or for the first leader whose
        # replicas are connected; after a failover once a replica has connected (lead() turns it
        # on; the old primary may be gone: commits would wait out the timeout).
        self.db.promote(replicated(self.cfg) and (why == Outcome.SWITCHOVER or connected > 0))
        db = self.db.observe()
        self.set_state(db=db, role=Role.PRIMARY, leader=self.me)
        # As the leader at once: until a replica acknowledges, it commits asynchronously, and
        # says so before the first write (it may not be replaced automatically meanwhile).
        self.publish_leading(db)
        log("writable %.2f s after it took the key" % (self.clock() - took))
        if window is not None:
            self.open_failover_window(window)
        return why

    def open_failover_window(self, value):
        """The failover window: a key under an etcd lease of failover_window seconds, written
        once this failover took writes (an aborted one opens none)."""
        try:
            seconds = max(1, int(float(self.cfg["failover_window"])))  # etcd rounds up to its minimum
            self.store.open_window(value, self.store.grant(seconds))
        except EtcdError as exc:
            log("opening the failover window: %s" % exc)

    def run(self):
        threading.Thread(target=self.keep, daemon=True).start()
        threading.Thread(target=self.guards, daemon=True).start()
        sd_notify("READY=1")
        while self.running:
            started = self.clock()
            try:
                outcome = self.step()
                self.set_state(last_step=outcome)
            except Exception as exc:  # pylint: disable=broad-except
                log("round failed: %s" % exc)
                self.db.close()
                if self.leadership.id is not None and not self.leadership.valid(self.clock(), self.cfg):
                    self.drop_lease("round failed past the lease deadline")
            self.round_ended = self.clock()
            interval = float(self.cfg["loop_wait"])
            if self.hurry:
                interval = CANDIDATE_INTERVAL if self.state.role == Role.CANDIDATE else HURRY_INTERVAL
            self.wake.wait(max(0.05, interval - (self.clock() - started)))
            self.wake.clear()


def on_watchdog(agent, wait=ABORT_FENCE_WAIT, exit_now=os._exit):
    """systemd's watchdog signal (SIGABRT): fence, then exit at once. The fence runs in a thread
    of its own: the handler runs in the main thread, which it may have interrupted inside a fence
    or holding the agent's lock. A fence that takes longer than `wait` is left to ExecStopPost
    (TimeoutAbortSec in the unit kills an agent whose handler never runs)."""
    worker = threading.Thread(
        target=agent.abort, args=("systemd's watchdog fired (no WATCHDOG=1 for the watchdog interval)",)
    )
    worker.daemon = True
    worker.start()
    worker.join(wait)
    exit_now(EXIT_WATCHDOG)


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The operator requests' unix socket: created for root alone (mode 0600 in a 0700 directory)."""

    daemon_threads = True

    def __init__(self, path, handler):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o177)
        try:
            super().__init__(path, handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def server_close(self):
        super().server_close()
        try:
            os.unlink(self.server_address)
        except OSError:
            pass


def load_config(path):
    with open(path) as handle:
        return dict(DEFAULTS, **json.load(handle))


def request_main(argv):
    """`webinfra-ha-agent request ...`: an operator request to this host's agent (as root)."""
    parser = argparse.ArgumentParser(prog="webinfra-ha-agent request")
    parser.add_argument("--config", default="/etc/webinfra/ha-agent.json")
    sub = parser.add_subparsers(dest="request", required=True)
    pause = sub.add_parser("pause", help="pause automatic failover (it resumes by itself after --seconds)")
    pause.add_argument("--reason", required=True)
    pause.add_argument("--by", default=os.environ.get("SUDO_USER") or os.environ.get("USER") or "root")
    pause.add_argument("--seconds", type=float, default=None, help="at most pause_max (default: pause_max)")
    sub.add_parser("resume", help="end the pause")
    switch = sub.add_parser("switchover", help="hand the leader lease to another database host")
    switch.add_argument("--to", required=True)
    sub.add_parser("failover", help="take the lease on this host (only while paused and without a leader)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    body = {}
    if args.request == "pause":
        body = {"reason": args.reason, "by": args.by}
        if args.seconds is not None:
            body["seconds"] = args.seconds
    elif args.request == "switchover":
        body = {"to": args.to}
    try:
        status, answer = control_request(cfg["control_socket"], "/" + args.request, body)
    except OSError as exc:
        print(json.dumps({"error": "the agent's control socket %s: %s" % (cfg["control_socket"], exc)}))
        return 1
    print(json.dumps(dict(answer, status=status), sort_keys=True))
    return 0 if 200 <= status < 300 else 1


def fence_main(argv, database=Database):
    """`webinfra-ha-agent fence [config]` (the unit's ExecStopPost, whenever the agent stopped,
    crashed or was killed by its watchdog): a writable server is made read-only at once - client
    sessions ended first, a lock wait bounded - and killed when that fails (systemd starts it
    again read-only). A read-only or stopped server is left alone."""
    cfg = load_config(argv[0] if argv else "/etc/webinfra/ha-agent.json")
    db = database(cfg, read_timeout=3)
    state = db.observe()
    if not state.get("ok") or state.get("read_only"):
        return 0
    log("the agent is not running and its server is writable: fencing")
    try:
        if db.fence():
            return 0
    except Exception as exc:  # pylint: disable=broad-except
        log("fencing by SQL failed: %s" % exc)
        if not_running(exc):
            return 0
    db.last_resort()
    return 1


def etcd_client(cfg):
    """A client of the agent's etcd (TLS; its user and password with etcd's access control)."""
    conf = cfg["etcd"]
    return etcd_api.Client(
        conf["endpoints"],
        conf.get("ca"),
        conf.get("cert"),
        conf.get("key"),
        timeout=max(0.5, float(cfg["loop_wait"])),
        user=conf.get("user") or "",
        password=conf.get("password") or "",
        crl_file=conf.get("crl") or None,
        password_file=conf.get("password_file") or None,
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "request":
        return request_main(argv[1:])
    if argv and argv[0] == "fence":
        return fence_main(argv[1:])
    if argv and argv[0] == "restart-database":
        return restart_main(argv[1:], load_config)
    path = argv[0] if argv else "/etc/webinfra/ha-agent.json"
    cfg = load_config(path)
    problems = check_config(cfg)
    if problems:
        log("webinfra-ha-agent: %s" % "; ".join(problems))
        return 2
    client, keeper = etcd_client(cfg), etcd_client(cfg)
    agent = Agent(cfg, etcd=client, keeper_etcd=keeper, fence_db=Database(cfg))
    server = LimitedHTTPServer((cfg["listen"], int(cfg["port"])), make_handler(agent.api))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    control = ControlServer(cfg["control_socket"], make_handler(agent.api, control=True))
    threading.Thread(target=control.serve_forever, daemon=True).start()

    def stop(_signum, _frame):
        agent.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGABRT, lambda _signum, _frame: on_watchdog(agent))
    log(
        "webinfra-ha-agent %s: cluster %s, ttl %s s, loop %s s"
        % (cfg["name"], cfg["cluster"], cfg["ttl"], cfg["loop_wait"])
    )
    agent.run()
    # Stopping keeps the lease (a restart adopts it) but never leaves a writable server behind:
    # the lease expires unless the agent comes back.
    try:
        agent.fence("the agent stops")
    except Exception as exc:  # pylint: disable=broad-except
        log("fencing at stop failed: %s" % exc)
    server.shutdown()
    control.shutdown()
    control.server_close()
    return 0
