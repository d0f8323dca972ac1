# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a restore or a rebuild does to this host and asks of the others, behind one seam.

`Host` runs the commands (mariadb-backup, mariadb-binlog, the client, systemctl, chown), unpacks
streams (zstd, mbstream), talks to the local server and to the other agents. restore.py decides
the order and the paths; its unit tests give it a recording stand-in (the acme agent's `Host`
is the model). The data directories themselves are plain paths: the tests use temporary ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from urllib.parse import quote

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup.common import CHUNK, get, get_json, new_incarnation, run
from webinfra_agents.backup.repository import receive_stream
from webinfra_agents.backup.source import connect, source_status


class Host:
    """This host, as restore.py sees it (the real one: subprocesses, systemd, PyMySQL, HTTPS)."""

    def __init__(self, cfg):
        self.cfg = cfg

    # --- commands and units -----------------------------------------------------------------

    def run(self, cmd):
        """Run `cmd`; its output, or BackupError with its last words."""
        return run(cmd)

    def active(self, unit):
        proc = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False)  # noqa: S603,S607
        return proc.returncode == 0

    def stop(self, unit):
        run(["systemctl", "stop", unit])

    def start(self, unit):
        run(["systemctl", "start", unit])

    def chown(self, path, owner):
        run(["chown", "-R", owner, path])

    def new_incarnation(self):
        return new_incarnation()

    @contextlib.contextmanager
    def unpacker(self, target, compressed):
        """A sink whose bytes (an xbstream, zstd-compressed when `compressed`) are extracted into
        `target`; BackupError when the extraction fails, after the body's own error if any."""
        procs = []
        if compressed:
            procs.append(subprocess.Popen(["zstd", "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE))  # noqa: S603,S607
        source = procs[0].stdout if procs else subprocess.PIPE
        procs.append(subprocess.Popen(["mbstream", "-x", "-C", target], stdin=source))  # noqa: S603,S607
        if compressed:
            procs[0].stdout.close()
        try:
            yield procs[0].stdin
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
        finally:
            procs[0].stdin.close()
            failed = [proc.wait() != 0 for proc in procs]
        if any(failed):
            raise bk.BackupError("unpacking into %s failed" % target)

    def binlog_to_sql(self, cmd, out_path):
        """mariadb-binlog's statements (`cmd`) written to `out_path`."""
        with open(out_path, "wb") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise bk.BackupError("mariadb-binlog failed: %s" % proc.stderr.decode("utf-8", "replace")[-1500:])

    def apply_sql(self, client, path):
        """The statements in `path` run by the client command `client`."""
        with open(path, "rb") as source:
            proc = subprocess.run(client, stdin=source, capture_output=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            error = proc.stderr.decode("utf-8", "replace")[-1500:]
            raise bk.BackupError("replaying the binary logs failed: %s" % error)

    # --- the local server -------------------------------------------------------------------

    def execute(self, statements, socket_path=None):
        """Each (sql, params) of `statements` on the local server; the last one's rows."""
        conn = connect(self.cfg, socket_path)
        try:
            cur = conn.cursor()
            rows = []
            for sql, params in statements:
                cur.execute(sql, params)
                rows = cur.fetchall() or []
            return rows
        finally:
            conn.close()

    def binlog_basename(self, socket_path):
        """The running server's binary-log base name (None when it does not run or logs none)."""
        try:
            rows = self.execute([("SELECT @@GLOBAL.log_bin_basename AS base", None)], socket_path)
        except Exception:  # pylint: disable=broad-except
            return None
        return (rows[0] if rows else {}).get("base")

    def own_status(self):
        return source_status(self.cfg)

    # --- the other agents -------------------------------------------------------------------

    def get_json(self, address, path, timeout=None):
        return get_json(self.cfg, address, path) if timeout is None else get_json(self.cfg, address, path, timeout)

    def fetch(self, repository, path, sink, expected_sha256=None):
        """The repository's file `path` written to `sink`, read to its end even when the sink
        fails (a damaged file breaks the decompressor): the checksum verdict comes first."""
        digest, broken = hashlib.sha256(), None
        with get(self.cfg, repository, "/files/" + quote(path), timeout=600) as answer:
            for chunk in iter(lambda: answer.read(CHUNK), b""):
                digest.update(chunk)
                if broken is None:
                    try:
                        sink.write(chunk)
                    except OSError as exc:
                        broken = exc
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise bk.BackupError("%s: checksum %s, the catalog says %s" % (path, digest.hexdigest(), expected_sha256))
        if broken is not None:
            raise bk.BackupError("%s: unpacking failed (%s)" % (path, broken))

    def receive_stream(self, address, lsn, sink):
        return receive_stream(self.cfg, address, lsn, sink)
