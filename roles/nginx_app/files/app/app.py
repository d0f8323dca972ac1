"""webinfra demo application: tells which host served the request.

Routes:
  /          plain text "Hello from <host>" (+ X-Served-By header)
  /healthz   JSON health report, 200 when healthy
  /api/info  JSON: host, release, version, client address
"""

import json
import os
import socket

HOST = socket.gethostname()
RELEASE = os.environ.get("APP_RELEASE", "unknown")
VERSION = os.environ.get("APP_VERSION", RELEASE)


def _respond(start_response, status, body, content_type):
    data = body.encode()
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("X-Served-By", HOST),
            ("X-App-Version", VERSION),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        body = json.dumps({"status": "ok", "host": HOST, "version": VERSION})
        return _respond(start_response, "200 OK", body + "\n", "application/json")
    if path == "/api/info":
        body = json.dumps(
            {
                "host": HOST,
                "release": RELEASE,
                "version": VERSION,
                "client": environ.get("HTTP_X_REAL_IP") or environ.get("REMOTE_ADDR"),
                "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR", ""),
            }
        )
        return _respond(start_response, "200 OK", body + "\n", "application/json")
    if path == "/":
        body = f"Hello from {HOST} (version {VERSION})\n"
        return _respond(start_response, "200 OK", body, "text/plain; charset=utf-8")
    return _respond(start_response, "404 Not Found", "not found\n", "text/plain; charset=utf-8")
