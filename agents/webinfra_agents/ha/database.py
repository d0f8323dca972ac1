# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HA agent's database adapter: the local server over its socket (PyMySQL, as the agent's
own account `webinfra-ha` through unix_socket authentication), through the collection's
replication, promotion and MariaDB/MySQL flavour utilities."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

from ansible_collections.webinfra.distributed.plugins.module_utils import gtid, promotion, replication
from webinfra_agents.ha.decide import peer, silent_peers
from webinfra_agents.kit import db as kit_db
from webinfra_agents.kit.daemon import log

# The agent's account has DROP on this schema only, which never exists (its nudge statement).
NUDGE_SCHEMA = "webinfra_ha_nudge"


def not_running(exc):
    """Whether a connection error says the server is not running (nothing to fence)."""
    code = exc.args[0] if getattr(exc, "args", None) else None
    return code in (2002, 2003) or isinstance(exc, (ConnectionRefusedError, FileNotFoundError))


class Database:
    """The local server over its socket, as the agent's own account (unix_socket authentication)."""

    def __init__(self, cfg, read_timeout=None):
        self.cfg = cfg
        self.conn = None
        self.flavor = None
        self.read_timeout = read_timeout or max(5, int(cfg["loop_wait"]) * 3)
        self.detach_lock = threading.Lock()
        self.detaching = False

    def cursor(self):
        if self.conn is None:
            self.conn = kit_db.connect(
                self.cfg["socket"], connect_timeout=2, read_timeout=self.read_timeout, write_timeout=5
            )
            cur = self.conn.cursor()
            self.flavor = kit_db.flavor(cur)
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
        replicas acknowledge it, which turns semi-sync on (it is committed asynchronously). The
        schema never exists: the agent's account may drop it and nothing else."""
        self.cursor().execute("DROP DATABASE IF EXISTS %s" % NUDGE_SCHEMA)

    def kill_io_threads(self, cur):
        """End the replication IO thread at once: STOP SLAVE waits while it is blocked reading
        from a primary that stopped answering (up to slave_net_timeout)."""
        cur.execute("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'")
        for row in cur.fetchall() or []:
            promotion._kill(cur, row["id"])  # pylint: disable=protected-access

    def promote(self, semisync):
        """Writable. Replication is detached without waiting: the SQL thread (idle: the leader
        applied what it received) stops at once, and the rest - STOP and RESET of a replica
        whose IO thread may hang connecting to a frozen source for seconds, which KILL does not
        interrupt - runs on a connection and thread of its own. Events the IO thread still
        fetches from a resumed old source land in a relay log nothing applies, then deleted."""
        cur = self.cursor()
        self.kill_io_threads(cur)
        status = replication.read_status(cur, self.flavor)
        if status is not None:
            if status.get("sql_running"):
                cur.execute(self.flavor.stop() + " SQL_THREAD")
            self.detach_replication()
        return promotion.apply(
            cur,
            self.flavor,
            "primary",
            semisync=semisync,
            event_scheduler=self.cfg.get("event_scheduler", False),
            keep_replica=True,
        )

    def detach_replication(self):
        """STOP and RESET ... ALL of the replication left on a new leader, in the background."""
        with self.detach_lock:
            if self.detaching:
                return
            self.detaching = True

        def run():
            try:
                conn = kit_db.connect(self.cfg["socket"], connect_timeout=2, read_timeout=120, write_timeout=5)
                try:
                    cur = conn.cursor()
                    cur.execute(self.flavor.stop())
                    cur.execute(self.flavor.reset())
                finally:
                    conn.close()
            except Exception as exc:  # pylint: disable=broad-except
                log("detaching the replication of the new leader: %s" % exc)
            finally:
                with self.detach_lock:
                    self.detaching = False

        threading.Thread(target=run, daemon=True).start()

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
        # An IO thread still trying the old source (a frozen host: connecting until its timeout)
        # makes the STOP before CHANGE MASTER wait for it: ended first.
        self.kill_io_threads(cur)
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

    def processlist(self):
        """Client sessions' {state, time} (decide.stalled reads them)."""
        cur = self.cursor()
        cur.execute(
            "SELECT STATE AS state, TIME AS time FROM information_schema.PROCESSLIST "
            "WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', "
            "'Slave_SQL', 'Slave_worker')"
        )
        return cur.fetchall() or []

    def drain(self, position, timeout, poll=0.05):
        """A new leader's replication: stop receiving, then wait until the SQL thread applied
        `position` (all it received). A transaction received only in part (its source died in
        the middle) was never acknowledged and can never be applied: done when the SQL thread
        has read the whole relay log and applied nothing more for half a second. False on an apply
        error or after `timeout` seconds."""
        cur = self.cursor()
        self.kill_io_threads(cur)
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            cur.execute("SELECT @@GLOBAL.gtid_slave_pos AS applied, @@GLOBAL.gtid_current_pos AS pos")
            row = cur.fetchone()
            applied = gtid.union(str(row["applied"] or ""), str(row["pos"] or ""))
            if gtid.contains(applied, position):
                return True
            status = replication.read_status(cur, self.flavor) or {}
            if not status.get("sql_running"):
                if status.get("last_sql_error"):
                    log("the SQL thread stopped before it applied %s: %s" % (position, status["last_sql_error"]))
                    return False
                # Stopped by hand (an operator, a slow-apply test): what it received is applied now.
                cur.execute(self.flavor.start() + " SQL_THREAD")
            if applied != last:
                last, since = applied, time.monotonic()
            idle = "read all relay log" in (status.get("sql_state") or "").lower()
            if idle and time.monotonic() - since >= 0.5:
                log("applied every complete transaction received (%s; received %s)" % (applied, position))
                return True
            time.sleep(poll)
        log("did not apply %s within %s s" % (position, timeout))
        return False

    def wait_applied(self, position, timeout):
        cur = self.cursor()
        sql, args = promotion.gtid_wait_statement(self.flavor, position, timeout)
        cur.execute(sql, args)
        return int(cur.fetchone()["result"]) == 0

    def last_resort(self):
        """The server could not be made read-only: stop it (systemd restarts it read-only)."""
        service = self.cfg.get("service", "mariadb")
        killed = kill_unit(service)
        if killed:
            log("fencing by SQL failed: killed the database server (%s)" % " ".join(map(str, killed)))
        else:
            # No cgroup of the unit found (an unusual host): systemd's own kill, which only root may ask.
            log("fencing by SQL failed: no cgroup of %s found, asking systemd to kill it" % service)
            subprocess.call(["systemctl", "kill", "--signal=SIGKILL", service])  # noqa: S603,S607
        self.close()


# Where the unit's cgroup is, by the line of /proc/self/cgroup: the unified hierarchy at the root
# (cgroup v2, Debian's default) or under unified/ (a hybrid host), else systemd's own v1 hierarchy.
CGROUP_MOUNTS = (
    (re.compile(r"^0::(/.*)$"), ("", "/unified")),
    (re.compile(r"^\d+:name=systemd:(/.*)$"), ("/systemd",)),
)


def unit_cgroup_procs(service, self_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """The cgroup.procs file of systemd's unit `service`: the sibling of this process's own unit
    (both are system services) in the first hierarchy that has it, or None."""
    name = service if service.endswith(".service") else service + ".service"
    try:
        with open(self_cgroup) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for pattern, mounts in CGROUP_MOUNTS:
        for line in lines:
            found = pattern.match(line.strip())
            if not found:
                continue
            for mount in mounts:
                path = os.path.join(root + mount + os.path.dirname(found.group(1)), name, "cgroup.procs")
                if os.path.exists(path):
                    return path
    return None


def kill_unit(service, procs_file=None, kill=os.kill):
    """SIGKILL to every process of the unit `service`, read from its cgroup: the agent's own user
    does it with CAP_KILL (`systemctl kill` is root's). Returns the PIDs signalled; an empty list
    when the cgroup could not be read."""
    path = procs_file or unit_cgroup_procs(service)
    if path is None:
        return []
    try:
        with open(path) as handle:
            pids = [int(token) for token in handle.read().split()]
    except (OSError, ValueError):
        return []
    signalled = []
    for pid in pids:
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        signalled.append(pid)
    return signalled
