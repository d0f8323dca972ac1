"""The demo application (roles/nginx_app/files/app/app.py) on a database that refuses
connections: the client gets no exception text, the log gets it under an incident id. A read
database that is frozen (accepts connections, never answers) neither fails reads nor holds up
the health endpoint."""

import importlib.util
import io
import json
import socket
import time
from pathlib import Path

import pymysql
import pytest

APP = Path(__file__).resolve().parents[3] / "roles" / "nginx_app" / "files" / "app" / "app.py"


def refused_port():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connections are refused at once
    return port


@pytest.fixture
def frozen():
    """A server that accepts connections (the kernel does) and never says anything: a frozen
    MariaDB."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def load_app(monkeypatch, tmp_path, env):
    for name in ("DB_READ_HOST", "DB_READ_SOCKET", "DB_READ_PORT", "DB_READ_FALLBACK_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("demo_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.READ_DOWN_MARK = str(tmp_path / "read-db-down")
    return module


WRITER = {
    "DB_WRITE_HOST": "127.0.0.1",
    "DB_WRITE_USER": "webapp_writer",
    "DB_WRITE_PASSWORD": "secret-password",
    "DB_READ_USER": "webapp_reader",
}


@pytest.fixture
def app(monkeypatch, tmp_path):
    return load_app(monkeypatch, tmp_path, {**WRITER, "DB_WRITE_PORT": str(refused_port())})


def call(app, path, method="GET", body=b""):
    answer = {}

    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))

    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "text/plain",
        "wsgi.input": io.BytesIO(body),
    }
    data = b"".join(app.application(environ, start_response)).decode()
    return answer["status"], data


@pytest.mark.parametrize(("path", "method"), [("/api/notes", "GET"), ("/api/notes", "POST"), ("/api/notes/7", "GET")])
def test_database_errors_reach_the_client_without_their_text(app, capsys, path, method):
    status, data = call(app, path, method, b"a note")
    assert status.startswith("503")
    body = json.loads(data)
    assert body["error"] == "the database is unavailable" and len(body["incident"]) == 12
    assert "127.0.0.1" not in data and "webapp_writer" not in data and "Errno" not in data
    logged = capsys.readouterr().err
    assert f"incident {body['incident']}" in logged and "127.0.0.1" in logged


def test_health_names_the_error_class_only(app, capsys):
    status, data = call(app, "/healthz")
    body = json.loads(data)
    assert status.startswith("200") and body["status"] == "degraded"
    assert body["db"]["write"]["ok"] is False and "OperationalError (incident " in body["db"]["write"]["detail"]
    assert "127.0.0.1" not in data
    assert "incident" in capsys.readouterr().err


def test_health_answers_within_the_balancer_check_timeout_when_the_read_database_is_frozen(
    monkeypatch, tmp_path, frozen
):
    """HAProxy's check times out after 3 s (haproxy_timeout_check): a health answer that waited
    for a frozen read database took every web server out of the balancer."""
    app = load_app(
        monkeypatch,
        tmp_path,
        {**WRITER, "DB_WRITE_PORT": str(refused_port()), "DB_READ_HOST": "127.0.0.1", "DB_READ_PORT": str(frozen)},
    )
    started = time.monotonic()
    status, data = call(app, "/healthz")
    took = time.monotonic() - started
    body = json.loads(data)
    assert status.startswith("200") and body["status"] == "degraded"
    assert body["db"]["read"]["ok"] is False and body["db"]["read"]["reads_from"] == "writer endpoint"
    assert took < 3, f"/healthz took {took:.1f} s"
    assert app.read_database_down()


class FakeServers:
    """_query stand-in: the read database fails as the test says, the writer endpoint answers."""

    def __init__(self, app, read_fails):
        self.calls, self.read_fails = [], read_fails
        self.error = pymysql.err.OperationalError(2013, "Lost connection to server during query (timed out)")
        app._query = self.query

    def query(self, role, sql, args=None, via_writer=False, timeouts="query"):
        where = "writer" if via_writer or role == "write" else "read"
        self.calls.append(where)
        if where == "read" and self.read_fails:
            raise self.error
        return [(1, "a note", "web-01", "2026-12-01 00:00:00")], f"{where}-server", 1


def test_reads_fall_back_to_the_writer_endpoint_while_the_read_database_fails(monkeypatch, tmp_path, capsys):
    app = load_app(
        monkeypatch, tmp_path, {**WRITER, "DB_WRITE_PORT": "3307", "DB_READ_SOCKET": "/run/mysqld/mysqld.sock"}
    )
    servers = FakeServers(app, read_fails=True)
    answer = {}

    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))

    environ = {"PATH_INFO": "/api/notes", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    body = json.loads(b"".join(app.application(environ, start_response)))
    assert answer["status"].startswith("200") and body["db_host"] == "writer-server" and body["read_fallback"]
    assert answer["headers"]["X-DB-Read-Fallback"] == "writer"
    assert servers.calls == ["read", "writer"]
    assert "reads go to the writer endpoint" in capsys.readouterr().err
    # Marked down: the next reads go straight to the writer endpoint, without waiting again.
    assert call(app, "/api/notes/1")[0].startswith("200")
    assert servers.calls == ["read", "writer", "writer"]
    # After DB_READ_FALLBACK_SECONDS the read database is tried again; answering, it is used.
    servers.read_fails = False
    assert not app.read_database_down(now=time.time() + 11)
    monkeypatch.setenv("DB_READ_FALLBACK_SECONDS", "0")
    status, data = call(app, "/api/notes")
    assert status.startswith("200") and json.loads(data)["db_host"] == "read-server"
    assert "read_fallback" not in json.loads(data)
    assert servers.calls[-1] == "read"


def test_an_error_in_the_query_is_no_reason_to_fall_back(monkeypatch, tmp_path):
    app = load_app(monkeypatch, tmp_path, {**WRITER, "DB_WRITE_PORT": "3307", "DB_READ_HOST": "10.0.0.3"})
    servers = FakeServers(app, read_fails=True)
    servers.error = pymysql.err.ProgrammingError(1146, "Table 'webapp.notes' doesn't exist")
    assert call(app, "/api/notes")[0].startswith("503")
    assert servers.calls == ["read"] and not app.read_database_down()


def test_without_a_read_database_of_their_own_reads_use_the_writer_endpoint(monkeypatch, tmp_path):
    app = load_app(monkeypatch, tmp_path, {**WRITER, "DB_WRITE_PORT": "3307"})
    servers = FakeServers(app, read_fails=False)
    status, data = call(app, "/api/notes")
    assert status.startswith("200") and "read_fallback" not in json.loads(data)
    assert app._db_settings("read")["port"] == 3307 and app._db_settings("read")["user"] == "webapp_reader"
    assert app._db_settings("read") == app._db_settings("read", via_writer=True)
    # One query, on the writer endpoint: no read database is tried first.
    assert servers.calls == ["writer"]


def test_a_read_host_without_a_port_is_on_3306(monkeypatch, tmp_path):
    app = load_app(monkeypatch, tmp_path, {**WRITER, "DB_WRITE_PORT": "3307", "DB_READ_HOST": "10.0.0.3"})
    assert (app._db_settings("read")["host"], app._db_settings("read")["port"]) == ("10.0.0.3", 3306)
    fallback = app._db_settings("read", via_writer=True)
    assert (fallback["host"], fallback["port"], fallback["user"]) == ("127.0.0.1", 3307, "webapp_reader")


def test_with_a_ca_every_network_connection_uses_tls_and_sockets_stay_plain(monkeypatch, tmp_path):
    app = load_app(
        monkeypatch,
        tmp_path,
        {
            **WRITER,
            "DB_WRITE_PORT": "3307",
            "DB_READ_SOCKET": "/run/mysqld/mysqld.sock",
            "DB_SSL_CA": "/etc/webapp/db-ca.pem",
        },
    )
    tls = {"ca": "/etc/webapp/db-ca.pem", "check_hostname": False}
    assert app._db_settings("write")["ssl"] == tls
    assert app._db_settings("read", via_writer=True)["ssl"] == tls
    assert "ssl" not in app._db_settings("read")
    monkeypatch.delenv("DB_SSL_CA")
    assert "ssl" not in app._db_settings("write")
