# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent's HTTPS service (mutual TLS): /status and /backup on sources, /catalog and /files
on repositories, each to the hosts allowed to ask."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from webinfra_agents.backup.common import CHUNK, peer_name, server_context
from webinfra_agents.backup.repository import catalog
from webinfra_agents.backup.source import BackupStream, source_status
from webinfra_agents.kit.daemon import log, sd_notify

# --- the HTTPS service -------------------------------------------------------------------------


def make_handler(cfg):
    stream_clients = set(cfg.get("stream_clients") or [])

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
            client = peer_name(self.connection.getpeercert())
            try:
                if url.path == "/status" and cfg.get("source"):
                    self.send_body(200, json.dumps(source_status(cfg)))
                elif url.path == "/backup" and cfg.get("source"):
                    if client not in stream_clients:
                        self.send_body(403, json.dumps({"error": "%s may not stream backups" % client}))
                        return
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

    return Handler


def serve(cfg):
    server = ThreadingHTTPServer((cfg["listen"], int(cfg["port"])), make_handler(cfg))
    server.socket = server_context(cfg).wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_a: threading.Thread(target=server.shutdown).start())
    sd_notify("READY=1")
    log("webinfra-backup-agent %s on %s:%s" % (cfg["name"], cfg["listen"], cfg["port"]))
    server.serve_forever()
    return 0
