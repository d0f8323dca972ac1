# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository's restore drill: the newest backup restored into a scratch server and its
tables compared with the source's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup.repository import load_backups, load_binlogs, repo_dir
from webinfra_agents.backup.restore import replay, unpack_chain
from webinfra_agents.backup.source import connect
from webinfra_agents.kit.files import read_json, write_atomic
from webinfra_agents.kit.metrics import write_textfile

# --- restore drill (on the backup host) ---------------------------------------------------------


# The scratch servers run as a system user of their own (cfg repository.drill_user, the role
# creates it), never root: the restored files come from another host (a compromised database host
# could have crafted them) and mariadbd parses them.
SCRATCH_USER = "webinfra-drill"


def drill_dir(cfg):
    """Where the drill restores (cfg repository.drill_dir, a directory of its own outside the
    repository's root-only tree, so that the scratch server's user can reach its files)."""
    return cfg["repository"].get("drill_dir") or repo_dir(cfg, "drill")


def empty_dir(path):
    """Remove what `path` holds (it stays, empty)."""
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                os.unlink(entry)
            except FileNotFoundError:
                continue


class ScratchServer:
    """A private mariadbd on a restored data directory: no network, no binary log, no
    replication, running as SCRATCH_USER (the data directory and its work directory are handed
    to that user first); stopped when the block ends. Its grant tables stay on: the archived
    binary logs replayed into it may manage accounts; root comes in through the socket as on the
    source."""

    def __init__(self, datadir, work, user=SCRATCH_USER, run=subprocess.run):
        self.datadir, self.work, self.user = datadir, work, user
        self.socket = os.path.join(work, "mysqld.sock")
        self.proc = None
        self.run = run

    def __enter__(self):
        self.run(["chown", "-R", "%s:%s" % (self.user, self.user), self.work], check=True)  # noqa: S603,S607
        cmd = [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            "--datadir=%s" % self.datadir,
            "--socket=%s" % self.socket,
            "--pid-file=%s" % os.path.join(self.work, "mysqld.pid"),
            "--log-error=%s" % os.path.join(self.work, "mysqld.err"),
            "--skip-networking",
            "--skip-log-bin",
            "--skip-slave-start",
            "--innodb-buffer-pool-size=128M",
            "--user=%s" % self.user,
        ]
        self.proc = subprocess.Popen(cmd)  # noqa: S603 - fixed command
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                connect({}, self.socket).close()
                return self
            except Exception:  # pylint: disable=broad-except
                time.sleep(0.5)
        self.stop()
        with open(os.path.join(self.work, "mysqld.err"), errors="replace") as handle:
            raise bk.BackupError("the restored server did not start: %s" % handle.read()[-1500:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()
        return False

    def checksums(self):
        """{schema.table: CHECKSUM TABLE ... EXTENDED} of every application table."""
        conn = connect({}, self.socket, read_timeout=3600)
        try:
            cur = conn.cursor()
            cur.execute(
                "SELECT table_schema AS s, table_name AS t FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE'"
                " AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
            )
            names = ["`%s`.`%s`" % (r["s"], r["t"]) for r in cur.fetchall()]
            out = {}
            for name in sorted(names):
                cur.execute("CHECKSUM TABLE %s EXTENDED" % name)
                out[name.replace("`", "")] = (cur.fetchone() or {}).get("Checksum")
            return out
        finally:
            conn.close()


def drill(cfg):
    """Restore the newest backup and, independently, the backup before it with the archived
    binary logs replayed up to the newest one's GTID position; both on private servers of this
    host. The drill passes when both start and every application table has the same checksum
    on both (with a single backup: when it restores and its tables can be read)."""
    started = time.time()
    backups = load_backups(cfg)
    if not backups:
        raise bk.BackupError("the repository holds no backup")
    address = cfg["listen"]
    newest = bk.restore_plan(backups)
    newest["sha256"] = {b["id"]: b["sha256"] for b in backups}
    target = next(b for b in backups if b["id"] == newest["chain"][-1])
    earlier = sorted((b for b in backups if b["id"] < target["id"] and b.get("gtid")), key=lambda b: b["id"])
    work = drill_dir(cfg)
    # Kept, emptied: the drill's unit may write it (ReadWritePaths) and nothing around it.
    os.makedirs(work, mode=0o700, exist_ok=True)
    empty_dir(work)
    # The scratch servers' user reaches its directories through this one (theirs alone).
    user = cfg["repository"].get("drill_user") or SCRATCH_USER
    shutil.chown(work, user, user)
    os.chmod(work, 0o700)
    result = {"backup": target["id"], "gtid": target.get("gtid", ""), "compared_with": None, "mismatches": []}
    try:
        first = os.path.join(work, "newest")
        os.makedirs(first)
        datadir = unpack_chain(cfg, newest, address, first)
        with ScratchServer(datadir, first, user) as server:
            sums = server.checksums()
        result["tables"] = len(sums)
        shutil.rmtree(first, ignore_errors=True)
        if earlier and target.get("gtid"):
            other = bk.restore_plan(backups, backup=earlier[-1]["id"], to_gtid=target["gtid"])
            started_at = next(b["started"] for b in backups if b["id"] == other["chain"][-1])
            other["binlogs"] = bk.binlog_replay_files(
                [{k: f[k] for k in ("server_id", "name", "mtime", "size")} for f in load_binlogs(cfg)], started_at
            )
            other["sha256"] = {b["id"]: b["sha256"] for b in backups}
            second = os.path.join(work, "replayed")
            os.makedirs(second)
            datadir = unpack_chain(cfg, other, address, second)
            with ScratchServer(datadir, second, user) as server:
                reached, replayed = replay(cfg, other, address, second, server.socket, binlog=False)
                again = server.checksums()
            result.update(compared_with=other["chain"][-1], gtid_reached=reached, binlogs_replayed=len(replayed))
            result["mismatches"] = sorted(name for name in set(sums) | set(again) if sums.get(name) != again.get(name))
    finally:
        empty_dir(work)
    result["ok"] = not result["mismatches"]
    result["duration"] = round(time.time() - started, 3)
    return result


def write_drill_metrics(cfg, result):
    """The last drill's result beside the backups' metrics (and in the repository's drill.json)."""
    state_path = repo_dir(cfg, "drill.json")
    state = read_json(state_path)
    state.update(last=result, last_run=time.time())
    if result.get("ok"):
        state["last_success"] = state["last_run"]
    write_atomic(state_path, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o600)
    path = cfg["repository"].get("textfile")
    if not path:
        return
    values = {
        "webinfra_restore_drill_last_run_success": bool(result.get("ok")),
        "webinfra_restore_drill_last_run_timestamp_seconds": round(state["last_run"], 3),
        "webinfra_restore_drill_last_success_timestamp_seconds": state.get("last_success"),
        "webinfra_restore_drill_duration_seconds": result.get("duration"),
        "webinfra_restore_drill_tables": result.get("tables"),
        "webinfra_restore_drill_compared": result.get("compared_with") is not None,
    }
    write_textfile(os.path.join(os.path.dirname(path), "webinfra_restore_drill.prom"), values, bk.METRICS_HELP)
