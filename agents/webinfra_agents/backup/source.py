# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source role (a database host): its replication state and its backups streamed on request."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading

from ansible_collections.webinfra.distributed.plugins.module_utils import replication
from webinfra_agents.backup import archive as bk
from webinfra_agents.backup.common import CHUNK, read_incarnation
from webinfra_agents.kit import db as kit_db

# --- the source (a database host) --------------------------------------------------------------


def connect(cfg, socket_path=None, read_timeout=10):
    """The local server (this source's socket, or `socket_path`: a scratch or restored server)."""
    return kit_db.connect(socket_path or cfg["source"]["socket"], read_timeout=read_timeout)


def read_state(cur):
    """(read_only and GTID position row, replica status or None) in the server's own dialect."""
    flavor = kit_db.flavor(cur)
    cur.execute("SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.%s AS gtid" % flavor.gtid_position_variable)
    return cur.fetchone(), replication.read_status(cur, flavor)


def source_status(cfg, connector=connect):
    """What the repository needs to choose a source: read-only, replicating, lag, position."""
    try:
        conn = connector(cfg)
        try:
            row, replica = read_state(conn.cursor())
        finally:
            conn.close()
    except Exception as exc:  # pylint: disable=broad-except
        return {"ok": False, "error": str(exc), "name": cfg["name"]}
    replicating = bool(replica) and replica["io_running"] and replica["sql_running"]
    lag = (replica or {}).get("seconds_behind")
    return {
        "ok": True,
        "name": cfg["name"],
        "read_only": int(row["ro"]) == 1,
        "replicating": replicating,
        "lag": None if lag is None else int(lag),
        "gtid": row["gtid"] or "",
        "incarnation": read_incarnation(),
    }


class BackupStream:
    """A backup stream for GET /backup: mariadb-backup's xbstream as frames to `out` (one at a
    time). The agent asks the stream helper (webinfra-backup-stream@.service, the mysql user's)
    over its unix socket when the source names one, and relays what it writes; otherwise (tests,
    a root command) it runs mariadb-backup itself."""

    lock = threading.Lock()

    def __init__(self, cfg, lsn):
        self.cfg, self.lsn = cfg, int(lsn or 0)

    def run(self, out):
        source = self.cfg["source"]
        if source.get("stream_socket"):
            return relay_stream(source["stream_socket"], self.lsn, out)
        return stream_backup(source["socket"], source["tmpdir"], self.lsn, out)


MAX_REQUEST_LINE = 32  # the helper's request: an LSN, in digits


def relay_stream(path, lsn, out, timeout=30):
    """Ask the stream helper at `path` for a backup from `lsn` (0: full) and copy its frames to
    `out`. A helper that ends without its report frame leaves the repository to say so."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"%d\n" % int(lsn))
        sock.shutdown(socket.SHUT_WR)
        # mariadb-backup may think for a while between files (a large table): no read timeout.
        sock.settimeout(None)
        while True:
            chunk = sock.recv(CHUNK)
            if not chunk:
                break
            out.write(chunk)
    finally:
        sock.close()


def parse_stream_request(line):
    """The LSN of a helper request (one line of digits), or None when it is anything else."""
    text = line.decode("ascii", "replace").strip() if isinstance(line, bytes) else str(line).strip()
    if not text or len(text) > 20 or not text.isdigit():
        return None
    return int(text)


def serve_stream(socket_path, stdin, out, tmpdir="/var/tmp/webinfra-backup"):  # noqa: S108 - PrivateTmp
    """The stream helper (socket-activated, one request per process): reads the LSN line from
    `stdin` and writes the stream to `out`. Returns the exit status."""
    lsn = parse_stream_request(stdin.readline(MAX_REQUEST_LINE))
    if lsn is None:
        report = {"rc": 2, "stderr": "the request is not an LSN (digits only)", "info": "", "checkpoints": ""}
        out.write(bk.frame(b"M", json.dumps(report).encode("utf-8")))
        return 2
    stream_backup(socket_path, tmpdir, lsn, out, user=kit_db.os_user())
    return 0


def stream_backup(socket_path, tmpdir, lsn, out, user=None):
    """mariadb-backup --backup --stream=xbstream from the server at `socket_path` (as `user`'s
    account: the process's own by default), written as frames to `out`, then its report."""
    os.makedirs(tmpdir, mode=0o700, exist_ok=True)
    work = tempfile.mkdtemp(dir=tmpdir, prefix="stream-")
    lsndir = os.path.join(work, "lsn")
    cmd = [
        "mariadb-backup",
        "--backup",
        "--stream=xbstream",
        "--socket=%s" % socket_path,
        "--user=%s" % (user or kit_db.os_user()),
        "--target-dir=%s" % os.path.join(work, "target"),
        "--extra-lsndir=%s" % lsndir,
    ]
    if lsn:
        cmd.append("--incremental-lsn=%d" % lsn)
    errors = open(os.path.join(work, "stderr"), "w+")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)  # noqa: S603 - fixed command
        try:
            while True:
                chunk = proc.stdout.read(CHUNK)
                if not chunk:
                    break
                out.write(bk.frame(b"D", chunk))
        except OSError:
            proc.kill()
            raise
        finally:
            rc = proc.wait()
        errors.seek(0)
        report = {"rc": rc, "stderr": errors.read()[-3000:]}
        # MariaDB 11 names them mariadb_backup_*, 10.11 (Debian 12) xtrabackup_*.
        for suffix in ("info", "checkpoints"):
            report[suffix] = ""
            for prefix in ("mariadb_backup_", "xtrabackup_"):
                path = os.path.join(lsndir, prefix + suffix)
                if os.path.exists(path):
                    with open(path) as handle:
                        report[suffix] = handle.read()
                    break
        out.write(bk.frame(b"M", json.dumps(report).encode("utf-8")))
    finally:
        errors.close()
        shutil.rmtree(work, ignore_errors=True)
