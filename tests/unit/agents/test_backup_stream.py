"""The backup agent's stream helper: the agent (its own user) asks it over a unix socket, the
helper (the mysql user's, socket-activated) takes only an LSN and writes the frames."""

import io
import json
import os
import socket
import threading

import pytest

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup import source
from webinfra_agents.backup.drill import empty_dir


@pytest.mark.parametrize("line", [b"0\n", b"123456789\n", b" 42 \n"])
def test_the_helper_takes_an_lsn(line):
    assert source.parse_stream_request(line) == int(line.strip())


@pytest.mark.parametrize(
    "line", [b"", b"\n", b"-1\n", b"1; DROP\n", b"--incremental-lsn=5\n", b"1" * 21 + b"\n", b"0x10\n"]
)
def test_the_helper_refuses_anything_else_without_running_mariadb_backup(line, monkeypatch):
    def never(*_args, **_kw):
        raise AssertionError("mariadb-backup must not run")

    monkeypatch.setattr(source, "stream_backup", never)
    out = io.BytesIO()
    assert source.serve_stream("/run/mysqld/mysqld.sock", io.BytesIO(line), out) == 2
    frames = list(bk.read_frames(io.BytesIO(out.getvalue()).read))
    assert frames[-1][0] == b"M" and json.loads(frames[-1][1])["rc"] == 2


def test_the_helper_streams_as_its_own_user(monkeypatch):
    seen = []
    monkeypatch.setattr(source, "stream_backup", lambda *args, **kw: seen.append((args, kw)))
    monkeypatch.setattr(source.kit_db, "os_user", lambda: "mysql")
    out = io.BytesIO()
    assert source.serve_stream("/run/mysqld/mysqld.sock", io.BytesIO(b"77\n"), out) == 0
    (args, kw) = seen[0]
    assert args[0] == "/run/mysqld/mysqld.sock" and args[2] == 77 and kw == {"user": "mysql"}


def test_the_agent_relays_what_the_helper_writes(tmp_path):
    """Over a real unix socket: the request line goes out, the helper's bytes come back unchanged
    until it closes."""
    path = str(tmp_path / "stream.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got = []
    payload = bk.frame(b"D", os.urandom(200000)) + bk.frame(b"M", b'{"rc": 0}')

    def helper():
        conn, _address = server.accept()
        with conn:
            got.append(conn.makefile("rb").readline())
            conn.sendall(payload)

    thread = threading.Thread(target=helper)
    thread.start()
    out = io.BytesIO()
    source.BackupStream({"source": {"stream_socket": path, "socket": "unused", "tmpdir": "unused"}}, "12").run(out)
    thread.join(5)
    server.close()
    assert got == [b"12\n"] and out.getvalue() == payload


def test_the_drill_empties_its_directory_and_keeps_it(tmp_path):
    """The drill's unit may write its directory alone (a mount point): emptied, never removed."""
    (tmp_path / "newest" / "data").mkdir(parents=True)
    (tmp_path / "newest" / "data" / "ibdata1").write_bytes(b"x")
    (tmp_path / "mysqld.sock").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "newest")
    empty_dir(str(tmp_path))
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []
