# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HA agent's decisions: pure functions of what it observed, unit-tested without I/O.

Each returns a value (an enum member where there is a choice) that the agent acts on; none reads
a clock, a socket or etcd itself.
"""

from __future__ import annotations

from enum import StrEnum

from ansible_collections.webinfra.distributed.plugins.module_utils import gtid

SWITCHOVER_MAX_AGE = 60  # seconds after which a switchover request is stale


class Outcome(StrEnum):
    """What one round of the agent did (its /status last_step; the unit tests' expectations)."""

    LEADER = "leader"
    LOST = "lost"
    FENCED = "fenced"
    RELEASED = "released"
    DB_DOWN = "db-down"
    NO_ETCD = "no-etcd"
    ADOPT_FAILED = "adopt-failed"
    SWITCHOVER_REFUSED = "switchover-refused"
    SWITCHOVER_WAITING = "switchover-waiting"
    HANDED_OVER = "handed-over"
    FOLLOWER = "follower"
    ERRANT = "errant"
    WAITING_BOOTSTRAP = "waiting-bootstrap"
    FORCED_CATCHING_UP = "forced-catching-up"
    WAITING_SWITCHOVER = "waiting-switchover"
    SWITCHOVER_CATCHING_UP = "switchover-catching-up"
    PAUSED = "paused"
    INELIGIBLE = "ineligible"
    CANDIDATE = "candidate"
    DIVERGED = "diverged"
    NOT_THE_BEST = "not-the-best"
    LOST_RACE = "lost-race"
    ACQUIRE_FAILED = "acquire-failed"
    # Leadership taken, by the reason it was taken.
    BOOTSTRAP = "bootstrap"
    FAILOVER = "failover"
    SWITCHOVER = "switchover"
    FORCED_FAILOVER = "forced failover"


class Choice(StrEnum):
    """A candidate's verdict among the candidates (choose)."""

    ACQUIRE = "acquire"
    WAIT = "wait"
    DIVERGED = "diverged"


class Follow(StrEnum):
    """A replica's verdict on a leader's position (follow_decision)."""

    FOLLOW = "follow"
    ERRANT = "errant"
    WAIT = "wait"


def check_config(cfg):
    """Problems with the timing settings (empty when usable)."""
    problems = []
    ttl, loop = float(cfg["ttl"]), float(cfg["loop_wait"])
    if loop <= 0:
        problems.append("loop_wait must be above 0, is %s" % cfg["loop_wait"])
    elif ttl < 3 * loop + 2:
        problems.append(
            "ttl (%s s) must be at least 3 x loop_wait + 2 s (%s s): the leader fences itself "
            "before its lease can expire" % (cfg["ttl"], 3 * loop + 2)
        )
    hung = hung_agent_fence_seconds(cfg)
    if ttl < hung + 1:
        problems.append(
            "ttl (%s s) must be at least the hung agent's fence time + 1 s (%s s: systemd's watchdog "
            "%s s, the abort %s s, the fence %s s): a frozen agent's server must be read-only before "
            "its lease can expire" % (cfg["ttl"], hung + 1, cfg.get("watchdog", 3), ABORT_SECONDS, FENCE_SECONDS)
        )
    return problems


ABORT_SECONDS = 1  # systemd's TimeoutAbortSec: a hung agent's SIGABRT, then SIGKILL
FENCE_SECONDS = 2  # the fence of ExecStopPost (webinfra-ha-agent fence): sessions ended, read_only


def hung_agent_fence_seconds(cfg):
    """Seconds from an agent's last sign of life to its server being read-only when the agent
    hangs (frozen, starved): systemd's watchdog, its abort timeout, then ExecStopPost's fence."""
    return float(cfg.get("watchdog", 3)) + ABORT_SECONDS + FENCE_SECONDS


def pause_active(record, now, pause_max):
    """Whether a pause record (etcd's pause key) still holds: until its `until`, and a record
    without one (an older agent's) for `pause_max` seconds after it was set."""
    if record is None:
        return False
    try:
        until = float(record.get("until") or (float(record.get("at") or 0) + float(pause_max)))
    except (TypeError, ValueError, AttributeError):
        return False
    return now < until


def fence_margin(cfg):
    """Seconds before the lease could expire at which an unrenewed leader fences itself."""
    return float(cfg["loop_wait"]) + 1.0


def lease_valid(renewed_at, now, cfg):
    """A leader may stay writable until `ttl - fence_margin` after its last renewal started."""
    return renewed_at is not None and now < renewed_at + float(cfg["ttl"]) - fence_margin(cfg)


def relay_applied(replica):
    """Whether a replica applied every transaction it received (its relay log is empty of work)."""
    if replica is None:
        return True
    received, applied = replica.get("gtid_io_pos") or "", replica.get("executed_gtid_set") or ""
    try:
        return gtid.contains(applied, received)
    except gtid.GtidError:
        return False


def replica_lag(db, leader_pos, previous):
    """Seconds this replica lags the leader: 0 when it has the leader's last published position
    (Seconds_Behind_Master stays high on an idle replica after a reconnection), else
    Seconds_Behind_Master while the IO thread runs, else the previous figure."""
    replica = db.get("replica") or {}
    try:
        if leader_pos is not None and db.get("ok") and gtid.contains(db.get("gtid") or "", leader_pos):
            return 0
    except gtid.GtidError:
        pass
    if replica.get("io_running") and replica.get("seconds_behind") is not None:
        return replica["seconds_behind"]
    return previous


def follow_decision(my_pos, leader_pos):
    """Follow.FOLLOW when the leader has everything this server has, else Follow.ERRANT (with the GTIDs)."""
    try:
        if gtid.contains(leader_pos or "", my_pos or ""):
            return Follow.FOLLOW, ""
    except gtid.GtidError as exc:
        return Follow.ERRANT, str(exc)
    return Follow.ERRANT, "this server is at %s, the leader at %s" % (my_pos or "(empty)", leader_pos or "(empty)")


def received(db):
    """Every transaction the server has, applied or only received into its relay log (a replica's
    acknowledgement means "in my relay log"): None when the two positions diverged."""
    replica = db.get("replica") or {}
    try:
        return gtid.union(db.get("gtid") or "", replica.get("gtid_io_pos") or "")
    except gtid.GtidError:
        return None


def known_lag(last_lag, mine, leader_record, recorded_lag):
    """This replica's lag behind the last leader, from what it measured while the leader was
    alive, else from what etcd (or its own state file) recorded: 0 when it has received the last
    leader's recorded position, else the lag it published before a restart; None when unknown."""
    if last_lag is not None:
        return last_lag
    try:
        if mine is not None and leader_record and gtid.contains(mine, leader_record.get("gtid") or ""):
            return 0
    except gtid.GtidError:
        pass
    return recorded_lag


def eligibility(db, errant, lag, leader_record, cfg, window_open):  # noqa: PLR0911 - one rule per refusal
    """(eligible, reason) for this server to compete for leadership when nobody holds it. `lag`
    comes from known_lag; `window_open` says whether the last failover's window (a key under an
    etcd lease of failover_window seconds) still exists."""
    if not db.get("ok"):
        return False, "database not answering"
    if errant:
        return False, "errant transactions: %s" % errant
    replica = db.get("replica")
    if replica is not None and not replica.get("sql_running") and replica.get("last_sql_error"):
        return False, "replication SQL thread stopped: %s" % replica["last_sql_error"]
    if received(db) is None:
        return False, "applied and received positions diverged"
    if lag is None and replica is not None:
        return False, "lag unknown: no measurement, and no recorded position of the last leader this server has"
    if lag is not None and lag > float(cfg["max_lag"]):
        return False, "lagged %s s behind the leader (max_lag %s s)" % (lag, cfg["max_lag"])
    if replicated(cfg) and leader_record and not leader_record.get("semisync"):
        # The last leader acknowledged commits that no replica confirmed (its replicas were cut
        # off or not connected yet): holding its last reported position is not enough, it may
        # have acknowledged more since. Only an operator may choose (failover.yml while paused).
        return False, "the last leader ran asynchronously: acknowledged writes may exist only there"
    if window_open:
        return False, "a failover happened less than failover_window (%s s) ago" % cfg["failover_window"]
    return True, ""


def replicated(cfg):
    """True when commits are to be acknowledged by a replica: semi-sync on and other members."""
    return bool(cfg.get("semisync")) and len(cfg.get("members", [])) > 1


def peer(address):
    """`ip:port` of an `ss` or PROCESSLIST address, IPv4-mapped and bracketed forms made plain."""
    host, _sep, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if host.startswith("::ffff:"):
        host = host[len("::ffff:") :]
    return "%s:%s" % (host, port)


def silent_peers(ss_output, max_silence_ms):
    """Peers of `ss -Htin` connections that left sent data unacknowledged for more than
    `max_silence_ms` (a replica cut off: the primary's binlog dump thread writes into a dead
    connection; with heartbeats every second a live replica acknowledges within milliseconds)."""
    silent, current = [], None
    for line in ss_output.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            fields = line.split()
            current = peer(fields[-1]) if len(fields) >= 2 else None
            continue
        info = dict(item.split(":", 1) for item in line.split() if ":" in item and not item.startswith("("))
        try:
            unacked = int(info.get("unacked", "0"))
            lastack = int(info.get("lastack", "0"))
        except ValueError:
            continue
        if current and unacked > 0 and lastack > max_silence_ms:
            silent.append(current)
    return silent


def silence_limit_ms(cfg):
    """How long a replica may leave the primary's data unacknowledged: twice its heartbeat, 2 s at least."""
    heartbeat = float(cfg.get("replication", {}).get("heartbeat_period", 1) or 1)
    return int(max(2.0, 2 * heartbeat) * 1000)


def switchover_pending(switchover, now):
    """True while a planned switchover is requested and not stale."""
    if not switchover or switchover.get("force"):
        return False
    since = switchover.get("at", switchover.get("requested", 0)) or 0
    return now - float(since) < SWITCHOVER_MAX_AGE


def choose(me, mine, peers):
    """(Choice, detail) for candidate `me`, whose received position is `mine`, among `peers`:
    {name: {"received": position or None, "candidate": bool, "final": bool}} of every live
    database member except the last leader. `final` says the peer published after this
    candidate saw the leader gone (its position can no longer grow).

    A peer that has a transaction `me` lacks wins or blocks: `me` waits, candidate or not (an
    acknowledged write may be only there: a semi-synchronous commit needs one replica's
    acknowledgement). A live peer that has not published since is waited for. Equal positions:
    the first name among the candidates."""
    for name, peer_info in sorted(peers.items()):
        if name == me:
            continue
        if not peer_info.get("final"):
            return Choice.WAIT, "waiting for %s to publish its position" % name
        theirs = peer_info.get("received")
        if theirs is None:
            continue  # its database does not answer: it has nothing to offer
        try:
            order = gtid.compare(mine or "", theirs or "")
        except gtid.GtidError:
            return Choice.DIVERGED, "%s at %s, %s at %s" % (me, mine, name, theirs)
        if order is None:
            return Choice.DIVERGED, "%s at %s, %s at %s" % (me, mine, name, theirs)
        if order < 0:
            return Choice.WAIT, "%s has transactions this server lacks (%s)" % (
                name,
                "a candidate" if peer_info.get("candidate") else "not a candidate",
            )
        if order == 0 and peer_info.get("candidate") and name < me:
            return Choice.WAIT, "%s has the same position and comes first" % name
    return Choice.ACQUIRE, ""


STALL_STATES = (
    # FLUSH TABLES WITH READ LOCK: MariaDB 10.4 and later implement it with the backup lock.
    "waiting for backup lock",
    "waiting for global read lock",
    "waiting for commit lock",
    "waiting for someone to free space",
)


def stalled(processlist, limit):
    """Client sessions that waited longer than `limit` seconds for something no commit gets
    past (a global read lock, a full disk): a leader whose writes all hang. Rows: {state, time}."""
    if not limit or float(limit) <= 0:
        return []
    return [row for row in waiting(processlist) if float(row.get("time") or 0) >= float(limit)]


def waiting(processlist):
    """Client sessions waiting in one of STALL_STATES now, however long."""
    return [row for row in processlist or [] if str(row.get("state") or "").lower() in STALL_STATES]


class StallWatch:
    """Writes stalled on the leader: a session waited `limit` seconds for what no commit gets
    past, or - the application gives up on its writes after a few seconds, and the server then
    drops their waits - sessions were seen waiting in every round for `limit` seconds while the
    binary log did not move (nothing committed)."""

    def __init__(self, limit):
        self.limit = float(limit or 0)
        self.since, self.position = None, None

    def observe(self, now, processlist, position):
        """The stalled sessions' rows (one is enough to act on); [] when writes go through."""
        if self.limit <= 0:
            return []
        long_waits = stalled(processlist, self.limit)
        if long_waits:
            return long_waits
        waits = waiting(processlist)
        if not waits or position != self.position:
            self.since = now if waits else None
            self.position = position
            return []
        if self.since is None:
            self.since = now
        return waits if now - self.since >= self.limit else []
