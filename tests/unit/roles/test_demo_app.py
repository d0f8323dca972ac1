"""The demo application (roles/nginx_app/files/app/app.py) on a database that refuses
connections: the client gets no exception text, the log gets it under an incident id."""

import importlib.util
import io
import json
import socket
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[3] / "roles" / "nginx_app" / "files" / "app" / "app.py"


@pytest.fixture
def app(monkeypatch):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connections are refused at once
    for name, value in {
        "DB_WRITE_HOST": "127.0.0.1",
        "DB_WRITE_PORT": str(port),
        "DB_WRITE_USER": "webapp_writer",
        "DB_WRITE_PASSWORD": "secret-password",
    }.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("demo_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
