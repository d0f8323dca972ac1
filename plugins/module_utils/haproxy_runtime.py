# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy runtime API client (admin socket) and the server-state engine built on it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import stat
import time


class RuntimeApiError(Exception):
    """The runtime API is unreachable, lacks the admin level, or refused a command."""


class UnknownServer(Exception):
    """The backend or server does not exist; the message lists those that do."""


class WaitTimeout(Exception):
    """A wait did not finish in time; the message says what was left."""


def _recv_all(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


class RuntimeClient(object):
    """One command per connection (the non-interactive mode of the runtime API)."""

    def __init__(self, path, timeout=5.0, connector=None):
        self.path = path
        self.timeout = timeout
        self._connector = connector or self._unix_connect

    def _unix_connect(self):
        if not os.path.exists(self.path):
            raise RuntimeApiError(
                "HAProxy runtime API socket %s does not exist: is HAProxy running with "
                "'stats socket %s level admin'?" % (self.path, self.path)
            )
        if not stat.S_ISSOCK(os.stat(self.path).st_mode):
            raise RuntimeApiError("%s is not a unix socket" % self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise RuntimeApiError("cannot connect to HAProxy runtime API socket %s: %s" % (self.path, exc)) from exc
        return sock

    def command(self, line):
        sock = self._connector()
        try:
            sock.sendall((line + "\n").encode())
            answer = _recv_all(sock)
        finally:
            sock.close()
        lowered = answer.strip().lower()
        if lowered.startswith("permission denied") or "access denied" in lowered:
            raise RuntimeApiError(
                "the HAProxy runtime API socket %s refused '%s': it needs 'level admin' "
                "(stats socket %s level admin)" % (self.path, line.split(" ")[0], self.path)
            )
        if lowered.startswith("unknown command"):
            raise RuntimeApiError("HAProxy does not know '%s': %s" % (line, answer.strip()[:200]))
        return answer

    def show_stat(self):
        return parse_csv(self.command("show stat"))

    def show_servers_state(self, backend):
        return parse_servers_state(self.command("show servers state %s" % backend))

    def set_state(self, backend, server, state):
        answer = self.command("set server %s/%s state %s" % (backend, server, state)).strip()
        if answer:
            raise RuntimeApiError("set server %s/%s state %s: %s" % (backend, server, state, answer))

    def set_weight(self, backend, server, weight):
        answer = self.command("set server %s/%s weight %d" % (backend, server, weight)).strip()
        if answer:
            raise RuntimeApiError("set server %s/%s weight %d: %s" % (backend, server, weight, answer))


def parse_csv(text):
    """Rows of `show stat` as dicts."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#"):
        raise RuntimeApiError("unexpected answer to 'show stat': %r" % text[:200])
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def parse_servers_state(text):
    """Rows of `show servers state` as dicts keyed by server name."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = None
    out = {}
    for line in lines:
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        if header is None or len(line.split()) < len(header) - 6:
            continue  # the version line ("1"), or an error text
        row = dict(zip(header, line.split()))
        out[row.get("srv_name")] = row
    return out


# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced/inherited/config/resolution/hostname maint, drains.
ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
ADMIN_DRAIN = 0x08 | 0x10


def server_view(row, state_row=None):
    """The fields of one server that matter here, typed."""
    status = row.get("status", "")
    admin = "enabled"
    if state_row is not None:
        bits = int(state_row.get("srv_admin_state", "0") or 0)
        if bits & ADMIN_MAINT:
            admin = "disabled"
        elif bits & ADMIN_DRAIN:
            admin = "drain"
    elif status.startswith("MAINT"):
        admin = "disabled"
    elif status.startswith("DRAIN"):
        admin = "drain"
    weight = row.get("weight", "")
    if state_row is not None and str(state_row.get("srv_uweight", "")).isdigit():
        weight = state_row["srv_uweight"]
    return {
        "backend": row.get("pxname"),
        "server": row.get("svname"),
        "status": status,
        "admin_state": admin,
        "weight": int(weight) if str(weight).isdigit() else None,
        "current_sessions": int(row.get("scur") or 0),
        "check_status": row.get("check_status", ""),
    }


def find_server(rows, backend, server, states=None):
    backends = sorted({r["pxname"] for r in rows if r.get("svname") == "BACKEND"})
    if backend not in backends:
        raise UnknownServer("backend '%s' does not exist; backends: %s" % (backend, ", ".join(backends) or "none"))
    servers = [r for r in rows if r["pxname"] == backend and r.get("svname") not in ("BACKEND", "FRONTEND")]
    for row in servers:
        if row["svname"] == server:
            return server_view(row, (states or {}).get(server))
    names = ", ".join(sorted(r["svname"] for r in servers)) or "none"
    raise UnknownServer("server '%s' does not exist in backend '%s'; servers: %s" % (server, backend, names))


def read_server(client, backend, server):
    rows = client.show_stat()
    view = find_server(rows, backend, server)  # validates names before the next command
    return find_server(rows, backend, server, client.show_servers_state(backend)) if view else view


# module state -> runtime API state
API_STATE = {"enabled": "ready", "disabled": "maint", "drain": "drain"}


def ensure_server(
    client,
    backend,
    server,
    state=None,
    weight=None,
    wait=False,
    wait_timeout=60,
    interval=0.5,
    check_mode=False,
    sleep=time.sleep,
    clock=time.time,
):
    """Bring one server to `state`/`weight`; optionally wait (drain: no sessions; enabled: UP;
    disabled: no sessions). Returns dict(changed, commands, before, after)."""
    before = read_server(client, backend, server)
    commands = []
    if weight is not None and before["weight"] != weight:
        commands.append(("weight", weight))
    if state is not None and before["admin_state"] != state:
        commands.append(("state", state))
    shown = []
    for kind, value in commands:
        if kind == "weight":
            shown.append("set server %s/%s weight %d" % (backend, server, value))
            if not check_mode:
                client.set_weight(backend, server, value)
        else:
            shown.append("set server %s/%s state %s" % (backend, server, API_STATE[value]))
            if not check_mode:
                client.set_state(backend, server, API_STATE[value])
    after = before
    if not check_mode:
        after = read_server(client, backend, server)
        if wait and state is not None:
            after = wait_for_state(client, backend, server, state, wait_timeout, interval, sleep, clock)
    else:
        after = dict(
            before,
            admin_state=state or before["admin_state"],
            weight=weight if weight is not None else before["weight"],
        )
    return {"changed": bool(shown), "commands": shown, "before": before, "after": after}


def wait_for_state(client, backend, server, state, timeout, interval=0.5, sleep=time.sleep, clock=time.time):
    """drain/disabled: until no current sessions; enabled: until the server is UP."""
    deadline = clock() + timeout
    while True:
        view = read_server(client, backend, server)
        if state in ("drain", "disabled") and view["current_sessions"] == 0:
            return view
        if state == "enabled" and view["status"] == "UP":  # not "UP 1/3" (failing checks)
            return view
        if clock() >= deadline:
            if state == "enabled":
                raise WaitTimeout(
                    "%s/%s is %s, not UP, after %ss (last check: %s)"
                    % (backend, server, view["status"], timeout, view["check_status"] or "none")
                )
            raise WaitTimeout(
                "%s/%s still has %d current session(s) after %ss; it stays %s"
                % (backend, server, view["current_sessions"], timeout, state)
            )
        sleep(interval)


def backends_view(client):
    """Every backend: its status and its servers' views."""
    rows = client.show_stat()
    out = {}
    for row in rows:
        if row.get("svname") == "BACKEND":
            name = row["pxname"]
            states = client.show_servers_state(name)
            servers = [
                server_view(r, states.get(r["svname"]))
                for r in rows
                if r["pxname"] == name and r.get("svname") not in ("BACKEND", "FRONTEND")
            ]
            out[name] = {"status": row.get("status", ""), "servers": servers}
    return out
