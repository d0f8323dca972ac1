# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository role (a backup host): taking backups from the best source, retention, the
catalog and restore plans, and the binary-log archive that follows the primary."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from ansible_collections.webinfra.distributed.plugins.module_utils import option_file
from webinfra_agents.backup import archive as bk
from webinfra_agents.backup.common import CHUNK, DEFAULT_ARCHIVER_SERVER_ID, get, get_json
from webinfra_agents.kit.daemon import log, sd_notify
from webinfra_agents.kit.files import read_json, write_atomic
from webinfra_agents.kit.metrics import write_textfile

# --- the repository (the backup host) ----------------------------------------------------------


def repo_dir(cfg, *parts):
    return os.path.join(cfg["repository"]["dir"], *parts)


def load_backups(cfg):
    base = repo_dir(cfg, "base")
    out = []
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        meta = os.path.join(base, name, "meta.json")
        if not name.endswith(".partial") and os.path.exists(meta):
            with open(meta) as handle:
                out.append(json.load(handle))
    return out


def load_binlogs(cfg):
    root = repo_dir(cfg, "binlog")
    out = []
    for server in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        for name in sorted(os.listdir(os.path.join(root, server))):
            if name.startswith("."):
                continue
            path = os.path.join(root, server, name)
            stat = os.stat(path)
            out.append({"server_id": server, "name": name, "path": path, "mtime": stat.st_mtime, "size": stat.st_size})
    return out


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def receive_stream(cfg, address, lsn, sink):
    """GET /backup?lsn= from the agent at `address`: mariadb-backup's xbstream into `sink`;
    returns its report (None when the stream ended without one)."""
    report = None
    with get(cfg, address, "/backup?lsn=%d" % int(lsn), timeout=600) as answer:
        for kind, payload in bk.read_frames(answer.read):
            if kind == b"D":
                sink.write(payload)
            elif kind == b"M":
                report = json.loads(payload.decode("utf-8"))
            else:
                raise bk.BackupError(payload.decode("utf-8", "replace"))
    return report


def check_report(report, name):
    if report is None:
        raise bk.BackupError("the stream from %s ended without mariadb-backup's report" % name)
    if report["rc"] != 0:
        raise bk.BackupError("mariadb-backup on %s failed (%s): %s" % (name, report["rc"], report["stderr"][-800:]))


def take(cfg, force_full=False):
    """One backup from the chosen source into the repository; returns its meta."""
    repo = cfg["repository"]
    statuses = {}
    for source in repo["sources"]:
        try:
            statuses[source["name"]] = get_json(cfg, source["address"], "/status")
        except Exception as exc:  # pylint: disable=broad-except
            statuses[source["name"]] = {"ok": False, "error": str(exc)}
    name, reason = bk.choose_source(statuses, repo.get("max_lag", 60), repo.get("allow_primary", True))
    address = next(s["address"] for s in repo["sources"] if s["name"] == name)
    backups = load_backups(cfg)
    incarnation = statuses[name].get("incarnation", "")
    kind, parent, lsn = bk.next_backup(
        backups, name, repo.get("incrementals_per_full", 6), force_full, incarnation=incarnation
    )
    started = time.time()
    ident = bk.backup_id(started)
    while os.path.exists(repo_dir(cfg, "base", ident)):
        started += 1
        ident = bk.backup_id(started)
    partial = repo_dir(cfg, "base", ident + ".partial")
    os.makedirs(partial, mode=0o700)
    target = os.path.join(partial, "backup.xb.zst")
    log("backup %s: %s from %s (%s)%s" % (ident, kind, name, reason, " after %s" % parent if parent else ""))
    report = None
    try:
        with open(target, "wb") as sink:
            zstd = subprocess.Popen(  # noqa: S603 - fixed command
                ["zstd", "-q", "-T0", "-%d" % int(repo.get("compress_level", 3)), "-c"],
                stdin=subprocess.PIPE,
                stdout=sink,
            )
            try:
                report = receive_stream(cfg, address, lsn, zstd.stdin)
            finally:
                zstd.stdin.close()
                if zstd.wait() != 0:
                    raise bk.BackupError("zstd failed")
        check_report(report, name)
        finished = time.time()
        meta = dict(
            bk.backup_record(report["info"], report["checkpoints"]),
            id=ident,
            kind=kind,
            parent=parent,
            source=name,
            source_reason=reason,
            incarnation=incarnation,
            started=started,
            finished=finished,
            duration=round(finished - started, 3),
            size=os.path.getsize(target),
            sha256=sha256_file(target),
        )
        write_atomic(os.path.join(partial, "meta.json"), json.dumps(meta, indent=2, sort_keys=True) + "\n", 0o600)
        os.rename(partial, repo_dir(cfg, "base", ident))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    prune(cfg)
    return meta


def prune(cfg):
    backups = load_backups(cfg)
    removed = bk.to_prune(backups, cfg["repository"].get("keep_full", 2))
    for ident in removed:
        shutil.rmtree(repo_dir(cfg, "base", ident), ignore_errors=True)
        log("retention: removed backup %s" % ident)
    kept = [b for b in backups if b["id"] not in removed]
    for path in bk.binlogs_to_prune(load_binlogs(cfg), kept):
        os.unlink(path)
        log("retention: removed archived binary log %s" % path)
    return removed


def write_metrics(cfg, run_ok=None):
    repo = cfg["repository"]
    path = repo.get("textfile")
    if not path:
        return
    state_path = repo_dir(cfg, "state.json")
    state = read_json(state_path)
    if run_ok is not None:
        state.update(last_run_success=bool(run_ok), last_run=time.time())
        write_atomic(state_path, json.dumps(state) + "\n", 0o600)
    backups = sorted(load_backups(cfg), key=lambda b: b["finished"])
    newest = backups[-1] if backups else {}
    values = {
        "webinfra_backup_last_success_timestamp_seconds": newest.get("finished"),
        "webinfra_backup_last_size_bytes": newest.get("size"),
        "webinfra_backup_last_duration_seconds": newest.get("duration"),
        "webinfra_backup_last_run_success": state.get("last_run_success"),
        "webinfra_backup_last_run_timestamp_seconds": state.get("last_run"),
        "webinfra_backup_count": {
            'kind="full"': sum(1 for b in backups if b["kind"] == "full"),
            'kind="incremental"': sum(1 for b in backups if b["kind"] != "full"),
        },
        "webinfra_backup_bytes_total": sum(int(b["size"]) for b in backups),
    }
    write_textfile(path, values, bk.METRICS_HELP)


def write_archive_metrics(cfg, connected):
    """The archive's own file (it runs beside the backups): whether mariadb-binlog follows the
    primary now, when that was checked, and the archive's size and last growth."""
    path = cfg["repository"].get("textfile")
    if not path:
        return
    binlogs = load_binlogs(cfg)
    values = {
        "webinfra_binlog_archive_connected": bool(connected),
        "webinfra_binlog_archive_checked_timestamp_seconds": round(time.time(), 3),
        "webinfra_binlog_archive_last_write_timestamp_seconds": max((f["mtime"] for f in binlogs), default=None),
        "webinfra_binlog_archive_bytes_total": sum(f["size"] for f in binlogs),
    }
    write_textfile(os.path.join(os.path.dirname(path), "webinfra_binlog_archive.prom"), values, bk.METRICS_HELP)


def catalog(cfg, backup=None, to_time=None, to_gtid=None):
    backups = load_backups(cfg)
    out = {
        "backups": backups,
        "binlogs": [{k: f[k] for k in ("server_id", "name", "mtime", "size")} for f in load_binlogs(cfg)],
    }
    try:
        plan = bk.restore_plan(
            backups, backup=backup, to_time=bk.parse_time(to_time) if to_time else None, to_gtid=to_gtid
        )
        started = next(b["started"] for b in backups if b["id"] == plan["chain"][-1])
        plan["binlogs"] = bk.binlog_replay_files(out["binlogs"], started) if plan["replay"] else []
        plan["sha256"] = {b["id"]: b["sha256"] for b in backups if b["id"] in plan["chain"]}
        out["plan"] = plan
    except bk.BackupError as exc:
        out["error"] = str(exc)
    return out


# --- the binary-log archiver -------------------------------------------------------------------


def holds_lease(address, port, timeout=3.0):
    """Whether the HA agent at `address` says its server is the writer: /primary answers 200 only
    on the holder of the leader lease, once writable (never on a server fenced or about to be)."""
    try:
        with urllib.request.urlopen("http://%s:%d/primary" % (address, int(port)), timeout=timeout) as answer:  # noqa: S310
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def primary_of(cfg):
    """(name, address, server_id, binary logs) of the writable source, asked over TLS with the
    archive account; with HA agents (repository.ha_agent_port), only the lease holder counts: a
    former primary still writable until its fence is never followed."""
    import pymysql  # noqa: PLC0415
    import pymysql.cursors  # noqa: PLC0415

    account = cfg["repository"]["binlog"]
    for source in cfg["repository"]["sources"]:
        try:
            conn = pymysql.connect(
                host=source["address"],
                port=int(account.get("port", 3306)),
                user=account["user"],
                password=account["password"],
                # PyMySQL builds its TLS context from these (an `ssl` dict beside them is dropped).
                ssl_ca=cfg["tls"]["ca"],
                ssl_verify_cert=True,
                ssl_verify_identity=True,
                connect_timeout=3,
                read_timeout=5,
                cursorclass=pymysql.cursors.DictCursor,
            )
        except Exception as exc:  # pylint: disable=broad-except
            log("archive: %s does not answer: %s" % (source["name"], exc))
            continue
        try:
            cur = conn.cursor()
            cur.execute("SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.server_id AS id")
            row = cur.fetchone()
            agent_port = int(cfg["repository"].get("ha_agent_port") or 0)
            if int(row["ro"]) == 0 and agent_port and not holds_lease(source["address"], agent_port):
                log("archive: %s is writable but does not hold the leader lease: not followed" % source["name"])
            elif int(row["ro"]) == 0:
                cur.execute("SHOW BINARY LOGS")
                logs = [r["Log_name"] for r in cur.fetchall()]
                return source["name"], source["address"], int(row["id"]), logs
        finally:
            conn.close()
    return None


def still_primary(cfg, address):
    found = primary_of(cfg)
    return found is not None and found[1] == address


def archive(cfg):
    """Follow the writable server's binary log with mariadb-binlog --raw --stop-never, into
    binlog/<server_id>/; re-resolve the primary when the stream ends or the server stops being
    the primary (a failover)."""
    account = cfg["repository"]["binlog"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    runtime = os.environ.get("RUNTIME_DIRECTORY") or tempfile.mkdtemp(prefix="webinfra-archive-")
    options = os.path.join(runtime, "client.cnf")
    write_atomic(
        options,
        "[client]\nuser=%s\npassword=%s\nssl-ca=%s\nssl-verify-server-cert\n"
        % (
            option_file.mysql_value(account["user"], "the archive account's name"),
            option_file.mysql_value(account["password"], "the archive account's password"),
            option_file.mysql_value(cfg["tls"]["ca"], "the CA file"),
        ),
        0o600,
    )
    sd_notify("READY=1")
    while not stop.is_set():
        write_archive_metrics(cfg, False)
        found = primary_of(cfg)
        if found is None:
            stop.wait(2)
            continue
        name, address, server_id, logs = found
        directory = repo_dir(cfg, "binlog", str(server_id))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        have = sorted(n for n in os.listdir(directory) if not n.startswith(".") and ".before-" not in n)
        start, aside = bk.archive_start(have, logs, bk.backup_id(time.time()))
        for old, new in aside:
            os.rename(os.path.join(directory, old), os.path.join(directory, new))
            log("archive: %s numbers its binary logs from the start again (reset): kept %s as %s" % (name, old, new))
        if have and have[-1] not in logs and not aside:
            log("archive: %s no longer has %s: a gap in the archive up to %s" % (name, have[-1], start))
        if start is None:
            stop.wait(2)
            continue
        cmd = [
            "mariadb-binlog",
            "--defaults-extra-file=%s" % options,
            "--read-from-remote-server",
            "--raw",
            "--stop-never",
            "--stop-never-slave-server-id=%d" % int(account.get("server_id", DEFAULT_ARCHIVER_SERVER_ID)),
            "--host=%s" % address,
            "--port=%d" % int(account.get("port", 3306)),
            "--result-file=%s/" % directory,
            start,
        ]
        log("archive: following %s (server id %d) from %s" % (name, server_id, start))
        proc = subprocess.Popen(cmd, cwd=directory)  # noqa: S603 - fixed command
        while proc.poll() is None and not stop.is_set():
            stop.wait(5)
            write_archive_metrics(cfg, proc.poll() is None)
            if proc.poll() is None and not still_primary(cfg, address):
                log("archive: %s is no longer the primary" % name)
                break
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop.wait(1)
    return 0
