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
DB_READ_HOST, DB_READ_PORT, DB_READ_SOCKET, DB_READ_USER, DB_READ_PASSWORD,
DB_READ_FALLBACK_SECONDS (10), and DB_SSL_CA: with it, every connection over the network uses TLS
and verifies the server's certificate against that CA (not its name: the writer endpoint passes
the connection through to whichever server is primary); unix sockets stay local and plain.

A read database that fails (refuses, or a frozen server that accepts the connection and never
answers) is not a reason to fail reads, nor to take the web server out of the load balancer:
reads go to the writer endpoint (with the read account) for DB_READ_FALLBACK_SECONDS, then the
read database is tried again. The mark is a file in the service's private /tmp, so every worker
process sees it. /healthz answers 200 within about a second whatever the databases do (each probe
is bounded and both run at once), with "degraded" and the detail when a database fails: the
balancer's check keeps a web server that can still serve its pages.

Errors never reach the client with their text (it names internal addresses and accounts): the
client gets an incident id, the application's log (gunicorn's, in the journal) the exception.
"""

import json
import os
import socket
import sys
import tempfile
import threading
import time
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
# Seconds (connect, then each read or write) of an ordinary query, of a read on the read
# database (a frozen one costs this once per fallback period), and of a health probe.
TIMEOUTS = {"query": (2, 5), "read": (2, 2), "probe": (1, 1)}
READ_DOWN_MARK = os.path.join(tempfile.gettempdir(), "webinfra-read-db-down")


def _db_settings(role, via_writer=False, timeouts="query"):
    """PyMySQL settings of the "write" or "read" database; `via_writer`: the read account on the
    writer endpoint (the fallback for reads)."""
    env = os.environ
    prefix = "DB_%s_" % role.upper()
    if not env.get("DB_WRITE_HOST"):
        return None
    connect, read = TIMEOUTS[timeouts]
    settings = {
        "database": env.get("DB_NAME", "webapp"),
        "user": env.get(prefix + "USER", ""),
        "password": env.get(prefix + "PASSWORD", ""),
        "connect_timeout": connect,
        "read_timeout": read,
        "write_timeout": read,
        "autocommit": True,
        "charset": "utf8mb4",
    }
    if via_writer or (role == "read" and not _own_read_database()):
        prefix = "DB_WRITE_"
    if env.get(prefix + "SOCKET"):
        settings["unix_socket"] = env[prefix + "SOCKET"]
    else:
        settings["host"] = env[prefix + "HOST"]
        settings["port"] = int(env.get(prefix + "PORT") or 3306)
        if env.get("DB_SSL_CA"):
            settings["ssl"] = {"ca": env["DB_SSL_CA"], "check_hostname": False}
    return settings


def _own_read_database():
    """Whether reads have a database of their own (else they already use the writer endpoint)."""
    env = os.environ
    return bool(env.get("DB_READ_SOCKET") or env.get("DB_READ_HOST"))


def _fallback_seconds():
    try:
        return max(0.0, float(os.environ.get("DB_READ_FALLBACK_SECONDS", "10")))
    except ValueError:
        return 10.0


def read_database_down(now=None):
    """True while the read database failed less than DB_READ_FALLBACK_SECONDS ago."""
    try:
        failed_at = os.stat(READ_DOWN_MARK).st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - failed_at < _fallback_seconds()


def mark_read_database(down):
    try:
        if down:
            with open(READ_DOWN_MARK, "a", encoding="utf-8"):
                pass
            os.utime(READ_DOWN_MARK)
        else:
            os.unlink(READ_DOWN_MARK)
    except OSError:
        pass


def _connect(role, via_writer=False, timeouts="query"):
    settings = _db_settings(role, via_writer, timeouts)
    if settings is None:
        raise RuntimeError("no database configured")
    import pymysql  # noqa: PLC0415 - optional dependency, only for the database routes

    return pymysql.connect(**settings)


def _failed_connection(exc):
    """The server did not answer (refused, timed out, lost): not an error in the query."""
    import pymysql  # noqa: PLC0415

    return isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError))


def _query(role, sql, args=None, via_writer=False, timeouts="query"):
    """(rows, server hostname, last insert id) for `sql` on the write or read database."""
    conn = _connect(role, via_writer, timeouts)
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


def _probe(role):
    """(server hostname, the connection's TLS cipher or "" when plain) of a bounded probe."""
    conn = _connect(role, timeouts="probe")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@hostname")
            server = cur.fetchone()[0]
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            row = cur.fetchone()
        return server, (row[1] if row else "") or ""
    finally:
        conn.close()


def _read(sql, args=None):
    """(rows, server, fallback) of a read: on the read database, or on the writer endpoint while
    the read database is marked down or when it fails now (which marks it)."""
    if _own_read_database() and not read_database_down():
        try:
            rows, server, _id = _query("read", sql, args, timeouts="read")
            return rows, server, False
        except Exception as exc:
            if not _failed_connection(exc):
                raise
            _incident("read database (reads go to the writer endpoint)", exc)
            mark_read_database(True)
    rows, server, _id = _query("read", sql, args, via_writer=True)
    return rows, server, _own_read_database()


def _incident(where, exc):
    """Log the exception under a new incident id (stderr: the journal); return the id."""
    ident = uuid.uuid4().hex[:12]
    sys.stderr.write("incident %s in %s: %s: %s\n" % (ident, where, type(exc).__name__, exc))
    sys.stderr.flush()
    return ident


def _db_health(role):
    """A bounded probe; for a read database of its own, it also sets or clears the down mark."""
    if _db_settings(role) is None:
        return {"ok": None, "detail": "not configured"}
    own_read = role == "read" and _own_read_database()
    try:
        server, cipher = _probe(role)
        answer = {"ok": True, "server": server, "tls": cipher or None}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        answer = {"ok": False, "detail": "%s (incident %s)" % (type(exc).__name__, _incident("healthz", exc))}
        if own_read:
            answer["reads_from"] = "writer endpoint"
    if own_read:
        mark_read_database(not answer["ok"])
    return answer


def health():
    """Both probes at once, each bounded by TIMEOUTS["probe"]: the answer comes in about a second
    even when a database is frozen."""
    results = {}
    threads = [
        threading.Thread(target=lambda r=role: results.__setitem__(r, _db_health(r)), daemon=True)
        for role in ("write", "read")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=sum(TIMEOUTS["probe"]) + 1)
    db = {role: results.get(role, {"ok": False, "detail": "no answer in time"}) for role in ("write", "read")}
    healthy = all(part["ok"] is not False for part in db.values())
    return {"status": "ok" if healthy else "degraded", "host": HOST, "version": VERSION, "db": db}


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


def _read_answer(start_response, status, server, fallback, **body):
    """A read's answer: the server that answered (X-DB-Host), and X-DB-Read-Fallback when the
    read went to the writer endpoint because the read database failed."""
    extra = [("X-DB-Host", server)]
    if fallback:
        extra.append(("X-DB-Read-Fallback", "writer"))
        body["read_fallback"] = True
    return _respond(start_response, status, {"db_host": server, **body}, extra=extra)


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
            rows, server, fallback = _read(
                "SELECT id, body, written_by, created_at FROM notes ORDER BY id DESC LIMIT 50"
            )
            return _read_answer(start_response, "200 OK", server, fallback, notes=[_note(r) for r in rows])
        note_id = path.rsplit("/", 1)[1]
        if not note_id.isdigit():
            return _respond(start_response, "404 Not Found", {"error": "no such note"})
        rows, server, fallback = _read(
            "SELECT id, body, written_by, created_at FROM notes WHERE id = %s", (int(note_id),)
        )
        if not rows:
            return _read_answer(start_response, "404 Not Found", server, fallback, error="no such note")
        return _read_answer(start_response, "200 OK", server, fallback, note=_note(rows[0]))
    except Exception as exc:  # noqa: BLE001 - the client gets an incident id, the log the reason
        body = {"error": "the database is unavailable", "incident": _incident(path, exc)}
        return _respond(start_response, "503 Service Unavailable", body)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        return _respond(start_response, "200 OK", health())
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
