# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HA agent's HTTP endpoints: what HAProxy, the other agents, Prometheus and operators ask.

On the network (the agent's port): GET /primary, /replica, /health (200 or 503, for HAProxy's
checks), /status (the agent's state as JSON), /metrics (Prometheus). Read-only: a POST there is
refused (403), whoever sends it.

On the control socket (a unix socket only root may open, on the database host itself): the same
GETs and the operator requests POST /pause {"by", "reason", "seconds"}, /resume, /switchover
{"to": name}, /failover, written to etcd through the agent's store. `webinfra-ha-agent request`
is their client; the playbooks run it on a database host over SSH, as root.
"""

from __future__ import annotations

import http.client
import json
import socket
from http.server import BaseHTTPRequestHandler

from webinfra_agents.ha.decide import replicated
from webinfra_agents.ha.store import EtcdError

MAX_REQUEST = 4096  # bytes of an operator request's body
REQUEST_TIMEOUT = 5  # seconds a client may take to send its request

COUNTER_HELP = {
    "failovers": "Failovers taken by this agent.",
    "fences": "Times this agent made its server read-only.",
    "switchovers": "Switchovers this agent handed over.",
    "silent_replicas_cut": "Binlog dump threads ended because their replica stopped acknowledging.",
    "rejoins": "Times this errant former primary rolled its unacknowledged transactions back and rejoined.",
}


class Api:
    """The answers and requests of one agent (its state, lease, store and configuration)."""

    def __init__(self, agent):
        self.agent = agent

    def request(self, path, body):
        """(HTTP code, answer) for an operator request."""
        agent = self.agent
        state = agent.snapshot()
        if path == "/pause":
            reason = str(body.get("reason") or "").strip()
            most = float(agent.cfg["pause_max"])
            asked = body.get("seconds")
            try:
                seconds = most if asked is None else float(asked)
            except (TypeError, ValueError):
                seconds = 0
            if not reason:
                return 400, {"error": "a pause needs a reason (who reads the alert must know why)"}
            if not 0 < seconds <= most:
                return 400, {
                    "error": "a pause ends by itself: seconds must be above 0 and at most %d (pause_max), is %r"
                    % (most, body.get("seconds"))
                }
            now = agent.wall()
            until = now + seconds
            agent.store.pause(now, str(body.get("by") or "an operator")[:200], reason[:500], until)
            agent.wake.set()
            return 200, {"paused": True, "until": until}
        if path == "/resume":
            agent.store.resume()
            return 200, {"paused": False}
        if path == "/failover":
            if state.get("leader"):
                return 409, {"error": "%s holds the leader lease: use a switchover" % state.get("leader")}
            if not state.get("paused"):
                return 409, {"error": "automatic failover is on: pause it (POST /pause) to force a choice"}
            agent.store.force_failover(agent.me, agent.wall())
            return 202, {"failover": agent.me}
        if path == "/switchover":
            target = body.get("to")
            if target not in agent.cfg.get("members", []) or target == state.get("leader"):
                return 400, {"error": "switchover target must be a database host other than the leader: %r" % target}
            agent.store.request_switchover(target, agent.wall())
            agent.wake.set()
            return 202, {"switchover": target, "leader": state.get("leader")}
        return 404, {"error": "unknown request %s" % path}

    def answers(self):
        agent = self.agent
        state = agent.snapshot()
        db = state.get("db") or {}
        leading = agent.leadership.valid(agent.clock(), agent.cfg) and db.get("ok") and not db.get("read_only")
        replica = db.get("replica") or {}
        lag = replica.get("seconds_behind")
        is_replica = (
            db.get("ok")
            and db.get("read_only")
            and not state.get("errant")
            and replica.get("io_running")
            and replica.get("sql_running")
            and lag is not None
            and lag <= float(agent.cfg["max_lag"])
        )
        return {"primary": bool(leading), "replica": bool(is_replica), "health": bool(db.get("ok")), "state": state}

    def metrics(self):
        agent = self.agent
        a = self.answers()
        state, db = a["state"], a["state"].get("db") or {}
        gauges = [
            ("leader", "1 while this server holds the leader lease and is writable.", a["primary"]),
            ("writable", "1 while the server is writable (read_only off).", db.get("ok") and not db.get("read_only")),
            ("leader_known", "1 while this agent sees a leader in etcd.", state.get("leader")),
            ("etcd_up", "1 while etcd answered the last round.", state.get("etcd_ok")),
            ("errant", "1 when this server has transactions the leader lacks.", state.get("errant")),
            (
                "paused",
                "1 while automatic failover is paused (an operator's pause that has not expired).",
                state.get("paused"),
            ),
            (
                "failover_blocked",
                "1 while no leader exists and this server may not take over.",
                agent.blocked and not state.get("leader"),
            ),
            (
                "semisync_async",
                "1 while this leader has replicas but runs asynchronously.",
                a["primary"] and replicated(agent.cfg) and not db.get("semisync"),
            ),
        ]
        lines = []
        for name, text, value in gauges:
            lines += [
                "# HELP webinfra_ha_%s %s" % (name, text),
                "# TYPE webinfra_ha_%s gauge" % name,
                "webinfra_ha_%s %d" % (name, 1 if value else 0),
            ]
        until = (state.get("pause") or {}).get("until") if state.get("paused") else None
        lines += [
            "# HELP webinfra_ha_pause_expires_timestamp_seconds When the pause of automatic failover ends (0: none).",
            "# TYPE webinfra_ha_pause_expires_timestamp_seconds gauge",
            "webinfra_ha_pause_expires_timestamp_seconds %.3f" % float(until or 0),
        ]
        for name, value in sorted(agent.counters.items()):
            lines += [
                "# HELP webinfra_ha_%s_total %s" % (name, COUNTER_HELP[name]),
                "# TYPE webinfra_ha_%s_total counter" % name,
                "webinfra_ha_%s_total %d" % (name, value),
            ]
        return "\n".join(lines) + "\n"


REFUSED = (
    "operator requests are not taken over the network: run `webinfra-ha-agent request "
    "pause|resume|switchover|failover` as root on a database host (the playbooks do)"
)


def make_handler(api, control=False):
    """The handler of the agent's port (read-only), or with `control` of its control socket."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):  # quiet: HAProxy checks every second
            return

        def address_string(self):
            return "control socket" if control else super().address_string()

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
            answers = api.answers()
            path = self.path.split("?")[0].rstrip("/") or "/"
            if path == "/metrics":
                body, code, kind = api.metrics(), 200, "text/plain; version=0.0.4"
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
            """Operator requests, written to etcd: /switchover {"to": name}, /pause, /resume, /failover."""
            path = self.path.split("?")[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if not control:
                code, answer = 403, {"error": REFUSED}
            elif length > MAX_REQUEST:
                code, answer = 413, {"error": "a request body is at most %d bytes" % MAX_REQUEST}
            else:
                try:
                    body = json.loads(self.rfile.read(length).decode("utf-8") or "{}") if length else {}
                    code, answer = api.request(path, body if isinstance(body, dict) else {})
                except (ValueError, EtcdError) as exc:
                    code, answer = 503, {"error": str(exc)}
            self.send(code, "application/json", json.dumps(answer, sort_keys=True) + "\n")

    # A client must send its request within these seconds (HAProxy's checks send at once).
    Handler.timeout = REQUEST_TIMEOUT
    return Handler


class ControlConnection(http.client.HTTPConnection):
    """HTTP over the agent's control socket (a unix socket)."""

    def __init__(self, path, timeout=15):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def control_request(path, request, body=None, timeout=15):
    """(status, answer) of an operator request sent to the agent at the control socket `path`."""
    conn = ControlConnection(path, timeout)
    try:
        data = json.dumps(body or {}).encode("utf-8")
        conn.request("POST", request, body=data, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        text = answer.read().decode("utf-8", "replace")
        try:
            return answer.status, json.loads(text)
        except ValueError:
            return answer.status, {"error": text.strip()}
    finally:
        conn.close()
