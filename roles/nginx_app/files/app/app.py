"""webinfra demo application: tells which host served the request, and which database.

Routes:
  /                plain text "Hello from <host>" (+ X-Served-By header)
  /healthz         JSON health report (app, and database reachability when configured)
  /api/info        JSON: host, release, version, client address
  /api/notes       GET: latest notes, read from the read database (the local replica when there
                   is one); POST: add a note (JSON {"body": ...} or plain text), written to the primary
  /api/notes/<id>  GET: one note, from the read database

Database settings come from the environment (all optional; without DB_WRITE_HOST the database
routes answer 503): DB_NAME, DB_WRITE_HOST, DB_WRITE_PORT, DB_WRITE_USER, DB_WRITE_PASSWORD,
DB_READ_HOST, DB_READ_PORT, DB_READ_SOCKET, DB_READ_USER, DB_READ_PASSWORD.

Errors never reach the client with their text (it names internal addresses and accounts): the
client gets an incident id, the application's log (gunicorn's, in the journal) the exception.
"""

import json
import os
import socket
import sys
import uuid


def _label(name, default):
    """Release labels written by the nginx_app role into the release directory (the cwd)."""
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read().strip() or default
    except OSError:
        return default


HOST = socket.gethostname()
RELEASE = os.environ.get("APP_RELEASE") or _label(".webinfra-release", "unknown")
VERSION = os.environ.get("APP_VERSION") or _label(".webinfra-version", RELEASE)
MAX_BODY = 1000


def _db_settings(role):
    env = os.environ
    prefix = "DB_%s_" % role.upper()
    if not env.get("DB_WRITE_HOST"):
        return None
    settings = {
        "database": env.get("DB_NAME", "webapp"),
        "user": env.get(prefix + "USER", ""),
        "password": env.get(prefix + "PASSWORD", ""),
        "connect_timeout": 2,
        "read_timeout": 5,
        "write_timeout": 5,
        "autocommit": True,
        "charset": "utf8mb4",
    }
    if env.get(prefix + "SOCKET"):
        settings["unix_socket"] = env[prefix + "SOCKET"]
    else:
        settings["host"] = env.get(prefix + "HOST") or env["DB_WRITE_HOST"]
        settings["port"] = int(env.get(prefix + "PORT") or 3306)
    return settings


def _connect(role):
    settings = _db_settings(role)
    if settings is None:
        raise RuntimeError("no database configured")
    import pymysql  # noqa: PLC0415 - optional dependency, only for the database routes

    return pymysql.connect(**settings)


def _query(role, sql, args=None):
    """(rows, server hostname) for `sql` on the write or read database."""
    conn = _connect(role)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
            last_id = cur.lastrowid
            cur.execute("SELECT @@hostname")
            server = cur.fetchone()[0]
        return rows, server, last_id
    finally:
        conn.close()


def _incident(where, exc):
    """Log the exception under a new incident id (stderr: the journal); return the id."""
    ident = uuid.uuid4().hex[:12]
    sys.stderr.write("incident %s in %s: %s: %s\n" % (ident, where, type(exc).__name__, exc))
    sys.stderr.flush()
    return ident


def _db_health(role):
    if _db_settings(role) is None:
        return {"ok": None, "detail": "not configured"}
    try:
        _rows, server, _id = _query(role, "SELECT 1")
        return {"ok": True, "server": server}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "detail": "%s (incident %s)" % (type(exc).__name__, _incident("healthz", exc))}


def _respond(start_response, status, body, content_type="application/json", extra=()):
    if not isinstance(body, str):
        body = json.dumps(body, default=str) + "\n"
    data = body.encode()
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("X-Served-By", HOST),
            ("X-App-Version", VERSION),
            ("Cache-Control", "no-store"),
            *extra,
        ],
    )
    return [data]


def _note(row):
    return {"id": row[0], "body": row[1], "written_by": row[2], "created_at": str(row[3])}


def _read_body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(min(length, 64 * 1024)).decode("utf-8", "replace") if length else ""
    if "json" in environ.get("CONTENT_TYPE", ""):
        try:
            return str(json.loads(raw).get("body", ""))
        except (ValueError, AttributeError):
            return ""
    return raw


def _notes(environ, start_response, path):
    method = environ.get("REQUEST_METHOD", "GET")
    try:
        if path == "/api/notes" and method == "POST":
            body = _read_body(environ).strip()
            if not body or len(body) > MAX_BODY:
                return _respond(start_response, "400 Bad Request", {"error": "body: 1 to %d characters" % MAX_BODY})
            _rows, server, note_id = _query(
                "write", "INSERT INTO notes (body, written_by) VALUES (%s, %s)", (body, HOST)
            )
            return _respond(
                start_response,
                "201 Created",
                {"id": note_id, "db_host": server, "written_by": HOST},
                extra=[("X-DB-Host", server)],
            )
        if method != "GET":
            return _respond(start_response, "405 Method Not Allowed", {"error": "GET or POST"})
        if path == "/api/notes":
            rows, server, _id = _query(
                "read", "SELECT id, body, written_by, created_at FROM notes ORDER BY id DESC LIMIT 50"
            )
            return _respond(
                start_response,
                "200 OK",
                {"db_host": server, "notes": [_note(r) for r in rows]},
                extra=[("X-DB-Host", server)],
            )
        note_id = path.rsplit("/", 1)[1]
        if not note_id.isdigit():
            return _respond(start_response, "404 Not Found", {"error": "no such note"})
        rows, server, _id = _query(
            "read", "SELECT id, body, written_by, created_at FROM notes WHERE id = %s", (int(note_id),)
        )
        if not rows:
            return _respond(
                start_response,
                "404 Not Found",
                {"error": "no such note", "db_host": server},
                extra=[("X-DB-Host", server)],
            )
        return _respond(
            start_response, "200 OK", {"db_host": server, "note": _note(rows[0])}, extra=[("X-DB-Host", server)]
        )
    except Exception as exc:  # noqa: BLE001 - the client gets an incident id, the log the reason
        body = {"error": "the database is unavailable", "incident": _incident(path, exc)}
        return _respond(start_response, "503 Service Unavailable", body)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        db = {"write": _db_health("write"), "read": _db_health("read")}
        healthy = all(part["ok"] is not False for part in db.values())
        body = {"status": "ok" if healthy else "degraded", "host": HOST, "version": VERSION, "db": db}
        return _respond(start_response, "200 OK", body)
    if path == "/api/info":
        body = {
            "host": HOST,
            "release": RELEASE,
            "version": VERSION,
            "client": environ.get("HTTP_X_REAL_IP") or environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR", ""),
        }
        return _respond(start_response, "200 OK", body)
    if path == "/api/notes" or path.startswith("/api/notes/"):
        return _notes(environ, start_response, path)
    if path == "/":
        return _respond(
            start_response, "200 OK", f"Hello from {HOST} (version {VERSION})\n", "text/plain; charset=utf-8"
        )
    return _respond(start_response, "404 Not Found", "not found\n", "text/plain; charset=utf-8")
