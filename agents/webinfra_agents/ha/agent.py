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

The pure functions at the top decide; the Agent class does the I/O (PyMySQL, etcd's JSON
gateway, an HTTP endpoint with /primary, /replica, /health, /status and /metrics).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.webinfra.distributed.plugins.module_utils import gtid, promotion, replication
from webinfra_agents.ha import etcd as etcd_api
from webinfra_agents.kit.daemon import log, sd_notify

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
    "etcd": None,
    "peers": {},
}
ERRANT_IO_ERRNOS = (1236,)  # the source's binary log lacks what this server has
COUNTER_HELP = {
    "failovers": "Failovers taken by this agent.",
    "fences": "Times this agent made its server read-only.",
    "switchovers": "Switchovers this agent handed over.",
    "silent_replicas_cut": "Binlog dump threads ended because their replica stopped acknowledging.",
}
NUDGE_INTERVAL = 10  # seconds between two statements that make an idle leader's replicas acknowledge
HURRY_INTERVAL = 0.1  # seconds between rounds of a switchover's target
SWITCHOVER_MAX_AGE = 60  # seconds after which a switchover request is stale
SWITCHOVER_ACK_WAIT = 5  # seconds the leader waits for the target to see a switchover request
ABORT_FENCE_WAIT = 1.0  # seconds the watchdog's handler waits for its fence before exiting
EXIT_WATCHDOG = 1  # the exit status after systemd's watchdog signal (systemd: watchdog, FAILURE)


# --- pure decisions (unit-tested) -----------------------------------------------------------


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
    return problems


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
    """'follow' when the leader has everything this server has, else 'errant' (with the GTIDs)."""
    try:
        if gtid.contains(leader_pos or "", my_pos or ""):
            return "follow", ""
    except gtid.GtidError as exc:
        return "errant", str(exc)
    return "errant", "this server is at %s, the leader at %s" % (my_pos or "(empty)", leader_pos or "(empty)")


def eligibility(db, last_lag, leader_record, cfg, last_failover_age):  # noqa: PLR0911 - one rule per refusal
    """(eligible, reason) for this server to compete for leadership when nobody holds it."""
    if not db.get("ok"):
        return False, "database not answering"
    if db.get("errant"):
        return False, "errant transactions"
    replica = db.get("replica")
    if replica is not None:
        if not replica.get("sql_running") and replica.get("last_sql_error"):
            return False, "replication SQL thread stopped: %s" % replica["last_sql_error"]
        if not relay_applied(replica):
            return False, "relay log not applied yet"
    if last_lag is None and replica is not None:
        return False, "lag never measured while the leader was alive"
    if last_lag is not None and last_lag > float(cfg["max_lag"]):
        return False, "lagged %s s behind the leader (max_lag %s s)" % (last_lag, cfg["max_lag"])
    if replicated(cfg) and leader_record and not leader_record.get("semisync"):
        # The last leader acknowledged commits that no replica confirmed (its replicas were cut
        # off or not connected yet): holding its last reported position is not enough, it may
        # have acknowledged more since. Only an operator may choose (failover.yml while paused).
        return False, "the last leader ran asynchronously: acknowledged writes may exist only there"
    if last_failover_age is not None and last_failover_age < float(cfg["failover_window"]):
        return False, "a failover happened %d s ago (failover_window %s s)" % (
            last_failover_age,
            cfg["failover_window"],
        )
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


def choose(me, my_pos, candidates):
    """'acquire', 'wait' or 'diverged' for `me` among `candidates` ({name: gtid position})."""
    for name, pos in sorted(candidates.items()):
        if name == me:
            continue
        try:
            order = gtid.compare(my_pos or "", pos or "")
        except gtid.GtidError:
            return "diverged"
        if order is None:
            return "diverged"
        if order < 0 or (order == 0 and name < me):
            return "wait"
    return "acquire"


# --- the agent ------------------------------------------------------------------------------


def not_running(exc):
    """Whether a connection error says the server is not running (nothing to fence)."""
    code = exc.args[0] if getattr(exc, "args", None) else None
    return code in (2002, 2003) or isinstance(exc, (ConnectionRefusedError, FileNotFoundError))


class Database:
    """The local server over its socket, as root (unix_socket authentication)."""

    def __init__(self, cfg, read_timeout=None):
        self.cfg = cfg
        self.conn = None
        self.flavor = None
        self.read_timeout = read_timeout or max(5, int(cfg["loop_wait"]) * 3)

    def cursor(self):
        import pymysql  # noqa: PLC0415 - only on the database host
        import pymysql.cursors  # noqa: PLC0415

        if self.conn is None:
            self.conn = pymysql.connect(
                unix_socket=self.cfg["socket"],
                user="root",
                autocommit=True,
                cursorclass=pymysql.cursors.DictCursor,
                connect_timeout=2,
                read_timeout=self.read_timeout,
                write_timeout=5,
            )
            cur = self.conn.cursor()
            from ansible_collections.webinfra.distributed.plugins.module_utils import mysql_flavor  # noqa: PLC0415

            cur.execute("SELECT VERSION() AS version, @@version_comment AS comment")
            row = cur.fetchone()
            self.flavor = mysql_flavor.detect(row["version"], row.get("comment") or "")
            return cur
        return self.conn.cursor()

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception as exc:  # pylint: disable=broad-except
                log("closing the database connection: %s" % exc)
        self.conn = None

    def observe(self):
        try:
            cur = self.cursor()
            cur.execute(
                "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_current_pos AS pos, "
                "@@GLOBAL.gtid_binlog_pos AS binlog, @@GLOBAL.gtid_slave_pos AS applied"
            )
            row = cur.fetchone()
            cur.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
            status = {r["Variable_name"].lower(): r["Value"] for r in cur.fetchall()}
            # Replicas connect with the replication account; other binary-log readers (the backup
            # role's archive) do not count as replicas.
            cur.execute(
                "SELECT @@GLOBAL.rpl_semi_sync_master_enabled AS enabled, (SELECT COUNT(*) FROM "
                "information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%%' AND USER = %s) AS dumps",
                (self.cfg["replication"]["user"],),
            )
            dumps = cur.fetchone()
            replica = replication.read_status(cur, self.flavor)
            if replica is not None:
                # What the SQL thread applied (SHOW SLAVE STATUS has no such column on every version).
                replica["executed_gtid_set"] = str(row["applied"] or "")
            return {
                "ok": True,
                "read_only": int(row["ro"]) == 1,
                "gtid": str(row["pos"] or ""),
                "binlog": str(row["binlog"] or ""),
                # Synchronous only with a semi-sync replica connected (the status alone stays ON on
                # some versions while commits go unacknowledged).
                "semisync": str(status.get("rpl_semi_sync_master_status", "OFF")).upper() == "ON"
                and int(status.get("rpl_semi_sync_master_clients", 0) or 0) > 0,
                "semisync_clients": int(status.get("rpl_semi_sync_master_clients", 0) or 0),
                "semisync_enabled": int(dumps["enabled"] or 0) == 1,
                "replicas_connected": int(dumps["dumps"] or 0),
                "replica": replica,
            }
        except Exception as exc:  # pylint: disable=broad-except
            self.close()
            return {"ok": False, "error": str(exc)}

    def fence(self):
        """Read-only with every client session ended; True when the server confirmed read_only."""
        cur = self.cursor()
        for thread in promotion.client_connections(cur):
            promotion._kill(cur, thread)  # pylint: disable=protected-access
        cur.execute("SET SESSION lock_wait_timeout = 2")
        promotion.apply(cur, self.flavor, "read_only", semisync=False)
        for thread in promotion.client_connections(cur):
            promotion._kill(cur, thread)  # pylint: disable=protected-access
        cur.execute("SELECT @@GLOBAL.read_only AS ro")
        return int(cur.fetchone()["ro"]) == 1

    def dump_threads(self, cur):
        """{`ip:port` of the replica: thread id} of the binary-log dump threads."""
        cur.execute(
            "SELECT ID AS id, HOST AS host FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%%'"
        )
        return {peer(row["host"]): row["id"] for row in cur.fetchall() or [] if row["host"]}

    def end_dump_threads(self, addresses):
        """End the dump threads of the replicas at `addresses` (other readers of the binary log
        are left alone); the `ip:port` of each ended."""
        cur = self.cursor()
        wanted = {a for a in addresses if a}
        return [
            address
            for address, thread in self.dump_threads(cur).items()
            if address.rsplit(":", 1)[0] in wanted and promotion._kill(cur, thread)  # pylint: disable=protected-access
        ]

    def end_stale_dump_threads(self, timeout=3.0):
        """End every binary-log dump thread of a server that does not lead (they are left from its
        last leadership) and wait until they are gone; the `ip:port` of each ended.

        Called while its semi-sync master is off: a stale dump thread still there when a replica
        registers again, with semi-sync on, is where MariaDB's zombie-dump-thread kill waits for
        ever on the ACK receiver while it holds the lock every new connection takes (seen with
        11.8 after a switchover back to a former leader: "Too many connections" for everyone)."""
        cur = self.cursor()
        ended = [address for address, thread in self.dump_threads(cur).items() if promotion._kill(cur, thread)]  # pylint: disable=protected-access
        deadline = time.monotonic() + timeout
        while ended and self.dump_threads(cur) and time.monotonic() < deadline:
            time.sleep(0.05)
        return ended

    def end_silent_dump_threads(self, max_silence_ms):
        """End the binary-log dump threads of replicas that stopped acknowledging (cut off).

        Left alone, such a thread blocks writing into the dead connection until net_write_timeout;
        when the replica reconnects meanwhile, MariaDB's zombie-dump-thread kill can wait for ever
        on the semi-sync ACK receiver while it blocks every new connection (seen with 11.8:
        "Too many connections" until the server is killed). Ended early, the replica finds none."""
        cur = self.cursor()
        threads = self.dump_threads(cur)
        if not threads:
            return []
        port = int(self.cfg.get("replication", {}).get("port", 3306))
        proc = subprocess.run(  # noqa: S603,S607 - fixed arguments
            ["ss", "-Htin", "state", "established", "( sport = :%d )" % port],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        ended = []
        for address in silent_peers(proc.stdout, max_silence_ms):
            if address in threads and promotion._kill(cur, threads[address]):  # pylint: disable=protected-access
                ended.append(address)
        return ended

    def nudge_semisync(self):
        """One statement the binary log carries and every server applies as a no-op: the
        replicas acknowledge it, which turns semi-sync on (it is committed asynchronously)."""
        self.cursor().execute("CREATE DATABASE IF NOT EXISTS mysql")

    def kill_io_threads(self, cur):
        """End the replication IO thread at once: STOP SLAVE waits while it is blocked reading
        from a primary that stopped answering (up to slave_net_timeout)."""
        cur.execute("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'")
        for row in cur.fetchall() or []:
            promotion._kill(cur, row["id"])  # pylint: disable=protected-access

    def promote(self, semisync):
        cur = self.cursor()
        self.kill_io_threads(cur)
        return promotion.apply(cur, self.flavor, "primary", semisync=semisync)

    def follow(self, address, fresh_start):
        cfg, repl = self.cfg, self.cfg["replication"]
        cur = self.cursor()
        desired = {
            "host": address,
            "port": repl.get("port", 3306),
            "user": repl["user"],
            "password": repl["password"],
            "use_gtid": "slave_pos",
            "connect_retry": repl.get("connect_retry", 10),
            "heartbeat_period": repl.get("heartbeat_period", 5),
            "ssl": repl.get("ssl", False),
            "ssl_ca": repl.get("ssl_ca"),
            "ssl_verify_server_cert": repl.get("ssl", False),
        }
        if fresh_start:
            # A former primary: its own binary log is its position (current_pos), not the stale slave_pos.
            status = replication.read_status(cur, self.flavor)
            if status is not None and (status["io_running"] or status["sql_running"] or status["io_connecting"]):
                cur.execute(self.flavor.stop())
            cur.execute("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos")
        try:
            return replication.ensure_replica(cur, self.flavor, desired, wait_timeout=max(2, cfg["loop_wait"]))
        except replication.ReplicationError as exc:
            return {"changed": True, "error": str(exc)}

    def stop_replication(self):
        cur = self.cursor()
        self.kill_io_threads(cur)
        status = replication.read_status(cur, self.flavor)
        if status is not None and (status["io_running"] or status["sql_running"] or status["io_connecting"]):
            cur.execute(self.flavor.stop())

    def wait_applied(self, position, timeout):
        cur = self.cursor()
        sql, args = promotion.gtid_wait_statement(self.flavor, position, timeout)
        cur.execute(sql, args)
        return int(cur.fetchone()["result"]) == 0

    def last_resort(self):
        """The server could not be made read-only: stop it (systemd restarts it read-only)."""
        log("fencing by SQL failed: killing the database server")
        subprocess.call(["systemctl", "kill", "--signal=SIGKILL", self.cfg.get("service", "mariadb")])  # noqa: S603,S607
        self.close()


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
        self.prefix = "/webinfra/%s/" % self.cfg["cluster"]
        self.etcd = etcd
        self.db = db or Database(self.cfg)
        # The lease is renewed, and its deadline enforced, by a thread of its own with its own etcd
        # client and database connection: a round blocked in a slow statement (a promotion waiting
        # on a dead primary's connection) neither lets the lease lapse nor delays the fencing.
        self.keeper_etcd = keeper_etcd or etcd
        self.fence_db = fence_db or self.db
        self.clock, self.wall = clock, wall
        self.lease = None
        self.renewed_at = None
        self.lock = threading.Lock()
        # One fence at a time on fence_db (the guard thread, the main loop past the deadline, the
        # watchdog's abort): a PyMySQL connection used by two threads at once breaks, and a broken
        # fence ends in the last resort (the server killed).
        self.fence_lock = threading.Lock()
        self.state = {"role": "starting", "leader": None, "db": {"ok": False}, "errant": "", "paused": False}
        self.counters = {"failovers": 0, "fences": 0, "switchovers": 0, "silent_replicas_cut": 0}
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

    # keys
    def key(self, name):
        return self.prefix + name

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
            "errant": self.state.get("errant", ""),
        }
        if self.seen is not None:
            out["switchover_seen"] = self.seen
        out.update(extra)
        return json.dumps(out, sort_keys=True)

    def publish(self, db, **extra):
        try:
            self.etcd.put(self.key("members/" + self.me), self.record(db, **extra))
        except etcd_api.EtcdError:
            pass

    def publish_leading(self, db):
        """The leader's record, also as `last_leader` (only while the leader key is ours): the
        candidates judge the last leader by what it reported while it led, which its later
        records (read-only, stopped, restarted) must not overwrite."""
        record = self.record(db)
        try:
            self.etcd.txn(
                [etcd_api.value_is(self.key("leader"), self.leader_value())],
                [
                    etcd_api.put_op(self.key("members/" + self.me), record),
                    etcd_api.put_op(self.key("last_leader"), record),
                ],
            )
        except etcd_api.EtcdError:
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
        db_state = self.state.get("db", {})
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

    def set_state(self, **values):
        with self.lock:
            self.state.update(values)

    # the loop
    def step(self):
        now = self.clock()
        db = self.db.observe()
        self.set_state(db=db)
        try:
            _rev, kvs = self.etcd.get_prefix(self.prefix)
            etcd_ok = True
        except etcd_api.EtcdError as exc:
            kvs, etcd_ok = {}, False
            self.set_state(etcd_error=str(exc))

        def value(name):
            kv = kvs.get(self.key(name))
            if kv is None:
                return None
            try:
                return json.loads(kv["value"])
            except ValueError:
                return None

        leader_kv = kvs.get(self.key("leader"))
        leader = value("leader") if leader_kv else None
        members = {}
        for key, kv in kvs.items():
            if key.startswith(self.key("members/")):
                try:
                    members[key.rsplit("/", 1)[1]] = json.loads(kv["value"])
                except ValueError:
                    continue
        paused = value("pause") is not None
        self.set_state(paused=paused, etcd_ok=etcd_ok)
        switchover = value("switchover")
        # Every agent polls fast while a switchover is pending; its target says it saw it.
        self.hurry = switchover_pending(switchover, self.wall())
        self.seen = (switchover or {}).get("requested") if self.hurry and switchover.get("to") == self.me else None

        if self.lease is not None:
            return self.lead(now, db, etcd_ok, leader, leader_kv, members, switchover)
        if not etcd_ok:
            self.set_state(role="unknown", leader=None)
            if db.get("ok") and not db.get("read_only"):
                self.fence("etcd unreachable and this server holds no lease")
            return "no-etcd"
        if leader is not None and leader.get("name") == self.me:
            # Our key from before a restart, or from before etcd was unreachable: adopt its lease.
            try:
                started = self.clock()
                if self.etcd.keepalive(leader_kv["lease"]) > 0:
                    self.lease, self.renewed_at = leader_kv["lease"], started
                    log("adopted the leader lease %s" % self.lease)
                    return self.lead(started, db, True, leader, leader_kv, members, switchover)
            except etcd_api.EtcdError:
                pass
            return "adopt-failed"
        if leader is not None:
            return self.follow(db, leader, members)
        return self.compete(db, members, value, paused)

    def lead(self, now, db, etcd_ok, leader, leader_kv, members, switchover):
        if etcd_ok and (leader is None or leader.get("name") != self.me):
            self.lease = None
            self.fence("the leader key is gone or names %s" % (leader or {}).get("name"))
            self.set_state(role="replica", leader=(leader or {}).get("name"))
            return "lost"
        if self.lease is None or not lease_valid(self.renewed_at, self.clock(), self.cfg):
            self.drop_lease("could not renew the leader lease in time")
            return "fenced"
        if not db["ok"]:
            self.db_failures += 1
            if self.db_failures >= 2:
                self.release("the database server does not answer: %s" % db.get("error"))
                return "released"
            return "db-down"
        self.db_failures = 0
        if switchover and switchover.get("to") not in (None, self.me) and "position" not in switchover:
            return self.hand_over(switchover, members)
        # Semi-sync waits only once a replica is connected: a new leader whose old primary is
        # gone commits at once (asynchronously; the candidates' rule covers that state).
        semisync = replicated(self.cfg) and db.get("replicas_connected", 0) > 0
        if db["read_only"] or db.get("replica") is not None or (semisync and not db.get("semisync_enabled")):
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
        self.set_state(role="primary", leader=self.me, errant="")
        self.publish_leading(db)
        return "leader"

    def renew(self):
        """One renewal of the leader lease (the keeper thread; the unit tests call it per round)."""
        with self.lock:
            lease = self.lease
        if lease is None:
            return None
        started = self.clock()
        try:
            left = self.keeper_etcd.keepalive(lease)
        except etcd_api.EtcdError as exc:
            left = None
            log("lease renewal failed: %s" % exc)
        with self.lock:
            if self.lease != lease:
                return None
            if left:
                self.renewed_at = started
        if left == 0 and self.expired(lease):
            self.drop_lease("the leader lease expired", lease)
        elif not lease_valid(self.renewed_at, self.clock(), self.cfg):
            self.drop_lease("could not renew the leader lease in time", lease)
        return left

    def expired(self, lease):
        """A keepalive answered without a TTL (seen while etcd elects a new raft leader): the lease
        expired only if the leader key no longer carries it."""
        try:
            kv = self.keeper_etcd.get(self.key("leader"))
        except etcd_api.EtcdError:
            return False  # unknown: the deadline check decides
        return kv is None or kv.get("lease") != lease

    def drop_lease(self, reason, lease=None):
        """Give up the lease we believe we hold and fence the server (from any thread)."""
        with self.lock:
            if lease is not None and self.lease != lease:
                return
            self.lease = None
        self.set_state(role="replica", leader=None)
        self.fence(reason, db=self.fence_db, last_resort=True)

    def abort(self, reason):
        """The agent is about to be killed (systemd's watchdog, after a hang or when its frozen
        host resumes): fence now. Left to the unit's ExecStopPost, the fence would wait for the
        process to be gone and a client to start, seconds on a loaded host."""
        self.running = False
        with self.lock:
            held = self.lease is not None
        if held:
            self.drop_lease(reason)
        else:
            self.fence(reason, db=self.fence_db)

    def guard(self):
        """Fence as soon as the lease deadline passes, whatever the renewal calls are waiting on
        (a keepalive to an unreachable etcd may take its timeout per endpoint)."""
        with self.lock:
            lease, renewed = self.lease, self.renewed_at
        if lease is not None and not lease_valid(renewed, self.clock(), self.cfg):
            self.drop_lease("could not renew the leader lease in time", lease)
            return True
        return False

    def guards(self):
        while self.running:
            try:
                self.guard()
            except Exception as exc:  # pylint: disable=broad-except
                log("lease guard: %s" % exc)
            time.sleep(0.1)

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
            self.etcd.txn(
                [etcd_api.value_is(self.key("leader"), self.leader_value())], [etcd_api.delete_op(self.key("leader"))]
            )
            self.etcd.revoke(self.lease)
        except etcd_api.EtcdError:
            pass
        self.lease = None
        try:
            self.fence(reason)
        except Exception as exc:  # pylint: disable=broad-except
            log("fencing after the release failed: %s" % exc)
        self.set_state(role="replica", leader=None)

    def leader_value(self):
        return json.dumps({"name": self.me, "address": self.cfg["address"]}, sort_keys=True)

    def hand_over(self, switchover, members):
        target = switchover["to"]
        record = members.get(target) or {}
        fresh = record.get("updated", 0) > self.wall() - 3 * float(self.cfg["ttl"])
        if not fresh or not record.get("ok") or record.get("errant") or not record.get("io_running"):
            log("switchover to %s refused: it is not a healthy replicating member" % target)
            try:
                self.etcd.delete(self.key("switchover"))
            except etcd_api.EtcdError:
                pass
            return "switchover-refused"
        waited = self.wall() - float(switchover.get("requested") or 0)
        if record.get("switchover_seen") != switchover.get("requested") and waited < SWITCHOVER_ACK_WAIT:
            # The target polls fast once it saw the request: hand over then, so that the write
            # window does not include the target's loop interval.
            return "switchover-waiting"
        log("switchover to %s: fencing, then handing over" % target)
        self.fence("planned switchover to %s" % target)
        self.db.stop_replication()
        final = self.db.observe()
        hand = dict(switchover, position=final.get("gtid", ""), at=self.wall(), **{"from": self.me})
        try:
            self.etcd.txn(
                [etcd_api.value_is(self.key("leader"), self.leader_value())],
                [etcd_api.put_op(self.key("switchover"), json.dumps(hand)), etcd_api.delete_op(self.key("leader"))],
            )
            self.etcd.revoke(self.lease)
        except etcd_api.EtcdError as exc:
            log("switchover hand-over failed: %s" % exc)
        self.lease = None
        self.counters["switchovers"] += 1
        self.set_state(role="replica", leader=None)
        return "handed-over"

    def follow(self, db, leader, members):
        self.candidate_since = None
        name = leader.get("name")
        self.set_state(role="replica", leader=name)
        if not db["ok"]:
            return "db-down"
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
        if pointed and replica.get("last_io_errno") in ERRANT_IO_ERRNOS:
            self.db.stop_replication()
            errant = "the leader's binary log lacks this server's transactions: %s (%s)" % (
                db["gtid"],
                replica.get("last_io_error"),
            )
            self.set_state(errant=errant)
        elif not pointed and replica is None and not db["gtid"]:
            # A new server: the role seeds it first (a dump, or replication from the start).
            self.set_state(role="new")
        elif not pointed and not self.state.get("errant"):
            leader_record = members.get(name) or {}
            if leader_record.get("read_only", True):
                # Its record from before it took the key (its position then): wait for the
                # leader's own, or a server that is ahead of that old position looks errant.
                verdict, detail = "wait", ""
            else:
                verdict, detail = follow_decision(db["gtid"], leader_record.get("gtid", ""))
            if verdict == "wait":
                log("waiting for the new leader %s to publish its position" % name)
            elif verdict == "errant":
                self.set_state(errant=detail)
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
        self.publish(db)
        return "errant" if self.state.get("errant") else "follower"

    def compete(self, db, members, value, paused):
        self.set_state(role="candidate", leader=None)
        if db.get("ok") and not db["read_only"]:
            self.fence("no leader holds the lease")
            db = self.db.observe()
        if value("initialized") is None:
            if self.me == self.cfg.get("bootstrap") and db.get("ok"):
                return self.acquire(db, {"initialized": json.dumps({"by": self.me, "at": self.wall()})}, "bootstrap")
            return "waiting-bootstrap"
        switchover = value("switchover")
        if switchover and switchover.get("force") and switchover.get("to") == self.me:
            # An operator's choice (failover.yml while paused): no eligibility rules, but the relay log first.
            if not relay_applied((db or {}).get("replica")):
                return "forced-catching-up"
            extra = {"last_failover": json.dumps({"at": self.wall(), "to": self.me, "forced": True})}
            return self.acquire(db, extra, "forced failover", delete=["switchover"])
        handed = switchover and switchover.get("position") is not None
        if handed and switchover.get("at", 0) > self.wall() - SWITCHOVER_MAX_AGE:
            if switchover.get("to") != self.me:
                return "waiting-switchover"
            if not self.db.wait_applied(switchover["position"], max(1, int(self.cfg["loop_wait"]))):
                return "switchover-catching-up"
            return self.acquire(db, {}, "switchover", delete=["switchover"])
        if paused:
            self.blocked = "paused"
            self.publish(db)
            return "paused"
        last = value("last_failover") or {}
        age = self.wall() - last["at"] if last.get("at") else None
        leader_record = None
        previous = value("last_leader")
        if previous:
            # What the last leader reported while it led (a record without a position is the
            # bare name written when it took the key: its member record then).
            leader_record = previous if "gtid" in previous else members.get(previous.get("name"))
        ok, reason = eligibility(db, self.last_lag, leader_record, self.cfg, age)
        self.set_state(blocked=reason)
        if not ok:
            if reason != self.blocked:
                log("may not take over: %s" % reason)
            self.blocked = reason
            self.candidate_since = None
            self.publish(db, candidate=False, blocked=reason)
            return "ineligible"
        self.blocked = ""
        if self.candidate_since is None:
            # First round: publish the final position; compare in the next round.
            self.candidate_since = self.wall()
            self.publish(db, candidate=True)
            return "candidate"
        self.publish(db, candidate=True)
        fresh = self.wall() - 2 * float(self.cfg["loop_wait"]) - 2
        candidates = {
            name: rec.get("gtid", "")
            for name, rec in members.items()
            if rec.get("candidate") and rec.get("updated", 0) >= fresh
        }
        candidates[self.me] = db["gtid"]
        verdict = choose(self.me, db["gtid"], candidates)
        if verdict == "diverged":
            self.blocked = "diverged GTID positions among the candidates: %s" % candidates
            log(self.blocked)
            return "diverged"
        if verdict == "wait":
            return "not-the-best"
        extra = {"last_failover": json.dumps({"at": self.wall(), "to": self.me, "from": (previous or {}).get("name")})}
        return self.acquire(db, extra, "failover")

    def acquire(self, db, extra_puts, why, delete=()):
        try:
            lease = self.etcd.grant(self.cfg["ttl"])
            started = self.clock()
            ops = [etcd_api.put_op(self.key("leader"), self.leader_value(), lease)]
            ops.append(etcd_api.put_op(self.key("last_leader"), self.record(db)))
            ops += [etcd_api.put_op(self.key(k), v) for k, v in extra_puts.items()]
            ops += [etcd_api.delete_op(self.key(k)) for k in delete]
            if not self.etcd.txn([etcd_api.absent(self.key("leader"))], ops):
                self.etcd.revoke(lease)
                return "lost-race"
        except etcd_api.EtcdError as exc:
            log("could not take the leader key: %s" % exc)
            return "acquire-failed"
        self.lease, self.renewed_at = lease, started
        self.candidate_since = None
        if why == "failover":
            self.counters["failovers"] += 1
        log("took the leader key (%s)" % why)
        self.db.stop_replication()
        connected = db.get("replicas_connected", 0)
        if why != "bootstrap" and connected > 0:
            # Left from an earlier leadership (the replicas connect only once they see the new
            # key): ended before semi-sync is turned on (Database.end_stale_dump_threads).
            for address in self.db.end_stale_dump_threads():
                log("ended the stale binlog dump thread of %s" % address)
            connected = 0
        # Semi-sync at once after a switchover (the former leader connects within a second, as a
        # semi-synchronous replica: no dump thread to restart) or for the first leader whose
        # replicas are connected; after a failover once a replica has connected (lead() turns it
        # on; the old primary may be gone: commits would wait out the timeout).
        self.db.promote(replicated(self.cfg) and (why == "switchover" or connected > 0))
        db = self.db.observe()
        self.set_state(db=db, role="primary", leader=self.me)
        self.publish(db)
        return why

    def request(self, path, body):
        """(HTTP code, answer) for an operator request."""
        if path == "/pause":
            self.etcd.put(self.key("pause"), json.dumps({"at": self.wall(), "by": body.get("by", "")}))
            return 200, {"paused": True}
        if path == "/resume":
            self.etcd.delete(self.key("pause"))
            return 200, {"paused": False}
        if path == "/failover":
            if self.state.get("leader"):
                return 409, {"error": "%s holds the leader lease: use a switchover" % self.state.get("leader")}
            if not self.state.get("paused"):
                return 409, {"error": "automatic failover is on: pause it (POST /pause) to force a choice"}
            self.etcd.put(self.key("switchover"), json.dumps({"to": self.me, "force": True, "at": self.wall()}))
            return 202, {"failover": self.me}
        if path == "/switchover":
            target = body.get("to")
            if target not in self.cfg.get("members", []) or target == self.state.get("leader"):
                return 400, {"error": "switchover target must be a database host other than the leader: %r" % target}
            self.etcd.put(self.key("switchover"), json.dumps({"to": target, "requested": self.wall()}))
            self.wake.set()
            return 202, {"switchover": target, "leader": self.state.get("leader")}
        return 404, {"error": "unknown request %s" % path}

    # HTTP answers
    def answers(self):
        with self.lock:
            state = dict(self.state)
        db = state.get("db") or {}
        leading = (
            self.lease is not None
            and lease_valid(self.renewed_at, self.clock(), self.cfg)
            and db.get("ok")
            and not db.get("read_only")
        )
        replica = db.get("replica") or {}
        lag = replica.get("seconds_behind")
        is_replica = (
            db.get("ok")
            and db.get("read_only")
            and not state.get("errant")
            and replica.get("io_running")
            and replica.get("sql_running")
            and lag is not None
            and lag <= float(self.cfg["max_lag"])
        )
        return {"primary": bool(leading), "replica": bool(is_replica), "health": bool(db.get("ok")), "state": state}

    def metrics(self):
        a = self.answers()
        state, db = a["state"], a["state"].get("db") or {}
        gauges = [
            ("leader", "1 while this server holds the leader lease and is writable.", a["primary"]),
            ("writable", "1 while the server is writable (read_only off).", db.get("ok") and not db.get("read_only")),
            ("leader_known", "1 while this agent sees a leader in etcd.", state.get("leader")),
            ("etcd_up", "1 while etcd answered the last round.", state.get("etcd_ok")),
            ("errant", "1 when this server has transactions the leader lacks.", state.get("errant")),
            ("paused", "1 while automatic failover is paused.", state.get("paused")),
            (
                "failover_blocked",
                "1 while no leader exists and this server may not take over.",
                self.blocked and not state.get("leader"),
            ),
            (
                "semisync_async",
                "1 while this leader has replicas but runs asynchronously.",
                a["primary"] and replicated(self.cfg) and not db.get("semisync"),
            ),
        ]
        lines = []
        for name, text, value in gauges:
            lines += [
                "# HELP webinfra_ha_%s %s" % (name, text),
                "# TYPE webinfra_ha_%s gauge" % name,
                "webinfra_ha_%s %d" % (name, 1 if value else 0),
            ]
        for name, value in sorted(self.counters.items()):
            lines += [
                "# HELP webinfra_ha_%s_total %s" % (name, COUNTER_HELP[name]),
                "# TYPE webinfra_ha_%s_total counter" % name,
                "webinfra_ha_%s_total %d" % (name, value),
            ]
        return "\n".join(lines) + "\n"

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
                if self.lease is not None and not lease_valid(self.renewed_at, self.clock(), self.cfg):
                    self.drop_lease("round failed past the lease deadline")
            sd_notify("WATCHDOG=1")
            interval = HURRY_INTERVAL if self.hurry else float(self.cfg["loop_wait"])
            self.wake.wait(max(0.05, interval - (self.clock() - started)))
            self.wake.clear()


def make_handler(agent):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):  # quiet: HAProxy checks every second
            return

        def send(self, code, kind, body):
            data = body.encode("utf-8")
            try:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                return  # the client (a health check) closed the connection first

        def do_GET(self):  # noqa: N802 - http.server's name
            answers = agent.answers()
            path = self.path.split("?")[0].rstrip("/") or "/"
            if path == "/metrics":
                body, code, kind = agent.metrics(), 200, "text/plain; version=0.0.4"
            elif path in ("/primary", "/replica", "/health"):
                ok = answers[path[1:]]
                body, code, kind = (path[1:] if ok else "no") + "\n", 200 if ok else 503, "text/plain"
            elif path == "/status":
                body, code, kind = (
                    json.dumps(answers["state"], sort_keys=True, default=str) + "\n",
                    200,
                    "application/json",
                )
            else:
                body, code, kind = "not found\n", 404, "text/plain"
            self.send(code, kind, body)

        def do_POST(self):  # noqa: N802 - http.server's name
            """Operator requests, written to etcd: /switchover {"to": name}, /pause, /resume."""
            path = self.path.split("?")[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length).decode("utf-8") or "{}") if length else {}
                code, answer = agent.request(path, body)
            except (ValueError, etcd_api.EtcdError) as exc:
                code, answer = 503, {"error": str(exc)}
            self.send(code, "application/json", json.dumps(answer, sort_keys=True) + "\n")

    return Handler


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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "/etc/webinfra/ha-agent.json"
    with open(path) as handle:
        cfg = dict(DEFAULTS, **json.load(handle))
    problems = check_config(cfg)
    if problems:
        log("webinfra-ha-agent: %s" % "; ".join(problems))
        return 2
    tls = cfg["etcd"]
    client = etcd_api.Client(
        tls["endpoints"], tls.get("ca"), tls.get("cert"), tls.get("key"), timeout=max(0.5, float(cfg["loop_wait"]))
    )
    keeper = etcd_api.Client(
        tls["endpoints"], tls.get("ca"), tls.get("cert"), tls.get("key"), timeout=max(0.5, float(cfg["loop_wait"]))
    )
    agent = Agent(cfg, etcd=client, keeper_etcd=keeper, fence_db=Database(cfg))
    server = ThreadingHTTPServer((cfg["listen"], int(cfg["port"])), make_handler(agent))
    threading.Thread(target=server.serve_forever, daemon=True).start()

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
    return 0
