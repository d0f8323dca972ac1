# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's HTTPS service (mutual TLS): /status and /backup on sources, /catalog and /files
on repositories, each to the hosts allowed to ask.

Every path answers only the hosts named in `clients` (the repositories and the database hosts;
another certificate of the internal CA gets 403). The TLS handshake runs in the connection's own
thread under a timeout, never in the accept loop, and at most MAX_CONNECTIONS are served at
once: an idle or slow client cannot stop the others."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from webinfra_agents.backup.common import CHUNK, peer_name, server_context
from webinfra_agents.backup.repository import catalog
from webinfra_agents.backup.source import BackupStream, source_status
from webinfra_agents.kit.daemon import log, sd_notify
from webinfra_agents.kit.http import MAX_CONNECTIONS, LimitedHTTPServer

# --- the HTTPS service -------------------------------------------------------------------------

# A client must finish its TLS handshake, then send its request, within these seconds; the
# transfer itself (a backup stream, a file) may wait longer for the other side.
HANDSHAKE_TIMEOUT = 10
REQUEST_TIMEOUT = 30
TRANSFER_TIMEOUT = 600


def clients_of(cfg):
    """The certificate names this agent answers (`clients`; `stream_clients` in older settings)."""
    return set(cfg.get("clients") or cfg.get("stream_clients") or [])


def make_handler(cfg):
    clients = clients_of(cfg)
    unit = cfg.get("client_unit") or ""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):
            log("%s %s" % (self.address_string(), fmt % args))

        def send_body(self, code, body, kind="application/json"):
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            cert = self.connection.getpeercert()
            client = peer_name(cert)
            self.connection.settimeout(TRANSFER_TIMEOUT)
            try:
                if client not in clients:
                    self.send_body(403, json.dumps({"error": "%s may not ask this agent" % (client or "a client")}))
                elif unit and peer_name(cert, "organizationalUnitName") != unit:
                    error = "%s: only a certificate issued for the backup agents (OU=%s) may ask" % (client, unit)
                    self.send_body(403, json.dumps({"error": error}))
                elif url.path == "/status" and cfg.get("source"):
                    self.send_body(200, json.dumps(source_status(cfg)))
                elif url.path == "/backup" and cfg.get("source"):
                    if not BackupStream.lock.acquire(False):
                        self.send_body(409, json.dumps({"error": "a backup is running on this host"}))
                        return
                    try:
                        lsn = int((parse_qs(url.query).get("lsn") or ["0"])[0])
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.end_headers()
                        log("backup stream to %s (lsn %d)" % (client, lsn))
                        BackupStream(cfg, lsn).run(self.wfile)
                    finally:
                        BackupStream.lock.release()
                elif url.path == "/catalog" and cfg.get("repository"):
                    self.send_body(200, json.dumps(catalog(cfg)))
                elif url.path.startswith("/files/") and cfg.get("repository"):
                    self.send_file(url.path[len("/files/") :])
                else:
                    self.send_body(404, json.dumps({"error": "not found"}))
            except (BrokenPipeError, ConnectionResetError):
                return

        def send_file(self, relative):
            root = os.path.realpath(cfg["repository"]["dir"])
            path = os.path.realpath(os.path.join(root, relative))
            inside = path.startswith(os.path.join(root, "base") + os.sep) or path.startswith(
                os.path.join(root, "binlog") + os.sep
            )
            if not inside or not os.path.isfile(path) or ".partial" in path or path.endswith("meta.json"):
                self.send_body(404, json.dumps({"error": "not found"}))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(os.path.getsize(path)))
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile, CHUNK)

    Handler.timeout = REQUEST_TIMEOUT
    return Handler


class TLSServer(LimitedHTTPServer):
    """A threading HTTPS server whose handshakes happen in the connections' threads, under a
    timeout, with at most `max_connections` connections at once (more are closed at once)."""

    def __init__(self, address, handler, context, max_connections=MAX_CONNECTIONS, handshake_timeout=HANDSHAKE_TIMEOUT):
        super().__init__(address, handler, max_connections)
        self.context = context
        self.handshake_timeout = handshake_timeout

    def finish_request(self, request, client_address):
        request.settimeout(self.handshake_timeout)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log("%s: TLS handshake failed: %s" % (client_address[0], exc))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()


def serve(cfg):
    server = TLSServer((cfg["listen"], int(cfg["port"])), make_handler(cfg), server_context(cfg))
    signal.signal(signal.SIGTERM, lambda *_a: threading.Thread(target=server.shutdown).start())
    sd_notify("READY=1")
    log("webinfra-backup-agent %s on %s:%s" % (cfg["name"], cfg["listen"], cfg["port"]))
    server.serve_forever()
    return 0
