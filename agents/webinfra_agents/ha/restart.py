# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`webinfra-ha-agent restart-database`: restart this host's database server without an outage.

The mysql_replication role's restart handler runs it on one database host at a time (a
configuration change never restarts more than one server at once):

1. when this server leads, hand the lease over first (a planned switchover to each other member
   in turn, through the agent's control socket, until one takes it); a leader whose healthy
   replicas all refuse is not restarted (the command fails, naming why); one with no healthy
   replica at all (a cluster being built) is restarted in place;
2. on a replica, drain it: stop its IO thread and let the SQL thread apply everything the
   replica received (and may have acknowledged to the leader's semi-sync) before the restart
   discards its relay log - what it acknowledged is then applied on this server, not only in
   the leader's binary log; bounded, so a broken SQL thread does not keep the change waiting;
3. restart the server (systemd starts it read-only);
4. wait until it replicates from the leader again with no lag (or, alone, answers again).

Without a running agent (its first start has not happened yet) the server is just restarted.
Prints one JSON line: what was done, and how long each step took.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from ansible_collections.webinfra.distributed.plugins.module_utils import gtid, replication
from webinfra_agents.ha.api import ControlConnection, control_request
from webinfra_agents.kit import db as kit_db

# The longest a replica's SQL thread may take to apply what it received before its restart.
DRAIN_TIMEOUT = 60.0


def agent_status(socket_path, timeout=5):
    """The local agent's /status over its control socket; None when it does not answer."""
    conn = ControlConnection(socket_path, timeout)
    try:
        conn.request("GET", "/status")
        answer = conn.getresponse()
        return json.loads(answer.read().decode("utf-8")) if answer.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def settled(status):
    """The server answers, is read-only, replicates with both threads and no lag (or is the
    cluster's only server and leads, or is errant: held out until rebuilt, nothing to wait for)."""
    if not status:
        return False
    db = status.get("db") or {}
    replica = db.get("replica") or {}
    if not db.get("ok"):
        return False
    if status.get("role") == "primary" or status.get("errant"):
        return True
    return bool(
        db.get("read_only") and replica.get("io_running") and replica.get("sql_running") and status.get("lag") == 0
    )


class Restart:
    """The steps, over injectable I/O (the unit tests replace status, request, systemctl, sleep)."""

    def __init__(
        self, cfg, status=None, request=None, systemctl=None, clock=time.monotonic, sleep=time.sleep, replica=None
    ):
        self.cfg = cfg
        socket_path = cfg["control_socket"]
        self.status = status or (lambda: agent_status(socket_path))
        self.request = request or (lambda path, body: control_request(socket_path, path, body))
        self.systemctl = systemctl or (lambda *args: subprocess.call(["systemctl", *args]))  # noqa: S603,S607
        self.clock, self.sleep = clock, sleep
        # The local replica's statements (stop_io, positions); LocalReplica by default.
        if replica is None and cfg.get("socket"):
            replica = LocalReplica(cfg["socket"])
        self.replica = replica

    def drain(self, timeout):
        """Stop the IO thread, then wait until the SQL thread applied all it received. Returns
        (drained, seconds); (None, 0) when this server replicates from nothing."""
        began = self.clock()
        if self.replica is None or not self.replica.stop_io():
            return None, 0.0

        def applied():
            received, done = self.replica.positions()
            return bool(received) and gtid.contains(done, received)

        return bool(self.wait(applied, timeout)), round(self.clock() - began, 2)

    def wait(self, predicate, timeout):
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            value = predicate()
            if value:
                return value
            self.sleep(0.5)
        return predicate()

    def hand_over(self, me, timeout):
        """The lease to another member; its name, or None when none took it."""
        for target in [m for m in self.cfg.get("members", []) if m != me]:
            code, _answer = self.request("/switchover", {"to": target})
            if code != 202:
                continue

            def moved(target=target):
                status = self.status() or {}
                db = status.get("db") or {}
                return status.get("leader") == target and db.get("read_only")

            if self.wait(moved, timeout):
                return target
        return None

    def run(self, timeout):
        began = self.clock()
        out = {"restarted": False, "switched_over_to": None}
        status = self.status()
        me = self.cfg["name"]
        leads = status and status.get("leader") == me and len(self.cfg.get("members", [])) > 1
        if leads and not status.get("replicas_healthy"):
            # No replica could take over (a cluster still being built: its replicas not seeded
            # yet): a restart in place cannot cause a failover; the writes pause meanwhile.
            out["in_place"] = "no healthy replica to hand the lease over to"
        elif leads:
            target = self.hand_over(me, min(20.0, timeout))
            if target is None:
                out["error"] = (
                    "%s leads and no other member took the lease over (each was asked for a switchover): "
                    "not restarted; make a replica healthy, then run again" % me
                )
                return 1, out
            out["switched_over_to"] = target
            out["switchover_seconds"] = round(self.clock() - began, 2)
        drained, seconds = self.drain(min(DRAIN_TIMEOUT, timeout))
        if drained is not None:
            out["drained"], out["drain_seconds"] = drained, seconds
        service = self.cfg.get("service", "mariadb")
        if self.systemctl("restart", service) != 0:
            out["error"] = "systemctl restart %s failed" % service
            return 1, out
        out["restarted"] = True
        restarted = self.clock()
        if status is None:
            return 0, out  # no agent yet: nothing to wait for but the server (systemd did)
        if not self.wait(lambda: settled(self.status()), timeout):
            out["error"] = "%s did not replicate again without lag within %s s: %s" % (
                service,
                timeout,
                json.dumps(self.status()),
            )
            return 1, out
        out["rejoin_seconds"] = round(self.clock() - restarted, 2)
        errant = (self.status() or {}).get("errant")
        if errant:
            out["errant"] = "%s (held out of the cluster: rebuild.yml)" % errant
        return 0, out


class LocalReplica:
    """This host's server over its socket (root's account: the command runs as root)."""

    def __init__(self, socket_path):
        self.socket_path = socket_path

    def _run(self, work):
        conn = kit_db.connect(self.socket_path, connect_timeout=2, read_timeout=10)
        try:
            cur = conn.cursor()
            return work(cur, kit_db.flavor(cur))
        finally:
            conn.close()

    def stop_io(self):
        """STOP SLAVE IO_THREAD when the server replicates; False when it does not (a primary)."""

        def work(cur, flavor):
            if replication.read_status(cur, flavor) is None:
                return False
            cur.execute(flavor.stop() + " IO_THREAD")
            return True

        try:
            return self._run(work)
        except Exception:  # pylint: disable=broad-except
            return False  # no drain: the restart goes on

    def positions(self):
        """(received, applied) GTID positions."""

        def work(cur, flavor):
            status = replication.read_status(cur, flavor) or {}
            cur.execute("SELECT @@GLOBAL.%s AS applied" % ("gtid_slave_pos" if flavor.is_mariadb else "gtid_executed"))
            return str(status.get("gtid_io_pos") or ""), str(cur.fetchone()["applied"] or "")

        try:
            return self._run(work)
        except Exception:  # pylint: disable=broad-except
            return "", ""


def restart_main(argv, load_config):
    parser = argparse.ArgumentParser(prog="webinfra-ha-agent restart-database")
    parser.add_argument("--config", default="/etc/webinfra/ha-agent.json")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    code, out = Restart(load_config(args.config)).run(args.timeout)
    print(json.dumps(out, sort_keys=True))
    return code
