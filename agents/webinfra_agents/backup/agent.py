# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup agent: physical backups streamed from a database host to the backup host, the
binary-log archive, and restores. The decisions are in backup.py; this is the I/O.

    python3 -m ...backup_agent serve   CONFIG   HTTPS service (mutual TLS, the internal CA)
    python3 -m ...backup_agent take    CONFIG [--full]    one backup (the systemd timer)
    python3 -m ...backup_agent archive CONFIG   the binary-log archiver (a systemd service)
    python3 -m ...backup_agent catalog CONFIG [--backup ID] [--to-time T] [--to-gtid G]
    python3 -m ...backup_agent restore CONFIG --plan FILE   (on the restore target)
    python3 -m ...backup_agent rebuild CONFIG [--source auto|backup|primary|HOST] [--dry-run]
                                               (on a database host: a new copy of the data)
    python3 -m ...backup_agent drill   CONFIG   a restore drill on the backup host (a systemd timer)
    python3 -m ...backup_agent metrics CONFIG

CONFIG (JSON, root-only, written by the backup role) has `name`, `listen`, `port`, `tls`
({ca, cert, key}: the host's certificate from the internal CA), `stream_clients` (the host
names allowed to stream a backup from this host), and a `source` section on database hosts
({socket, tmpdir}, and `peers`: the database hosts and repositories a rebuild asks) and/or a
`repository` section on backup hosts ({dir, sources, keep_full,
incrementals_per_full, max_lag, allow_primary, compress_level, textfile, binlog}).

On a source: GET /status (read-only? replicating? lag) and GET /backup?lsn=N (mariadb-backup's
xbstream in frames, see backup.frame). On a repository: GET /catalog and GET /files/... (the
stored backups and archived binary logs, for a restore target).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPSConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlparse

from ansible_collections.webinfra.distributed.plugins.module_utils import option_file
from webinfra_agents.backup import archive as bk
from webinfra_agents.kit.daemon import log, sd_notify

CHUNK = 1024 * 1024
STATUS_TIMEOUT = 5
# A rebuild whose source streams another backup (a scheduled one, another replica's copy: new
# replicas seeded in the same run) waits for it, asking every BUSY_POLL seconds, this long.
BUSY_WAIT = 900
BUSY_POLL = 2
# The archiver's server id towards the primary (a replica with the same id would be cut off).
DEFAULT_ARCHIVER_SERVER_ID = 4000000000
# A restore or a rebuild writes a new id here: backups continue a chain only within one.
INCARNATION_FILE = "/var/lib/webinfra-backup/incarnation"
# Replication state a copied data directory brings from its source (meaningless here).
SOURCE_REPLICATION_FILES = ("master.info", "relay-log.info", "multi-master.info")


def read_incarnation(path=INCARNATION_FILE):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def new_incarnation(path=INCARNATION_FILE):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    value = "%s-%s" % (bk.backup_id(time.time()), hashlib.sha256(os.urandom(16)).hexdigest()[:8])
    write_atomic(path, value + "\n", 0o600)
    return value


def load_config(path):
    with open(path) as handle:
        return json.load(handle)


def write_atomic(path, text, mode=0o644):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --- TLS ---------------------------------------------------------------------------------------


def server_context(cfg):
    tls = cfg["tls"]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls["ca"])
    ctx.load_cert_chain(tls["cert"], tls["key"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cfg):
    tls = cfg["tls"]
    ctx = ssl.create_default_context(cafile=tls["ca"])
    ctx.load_cert_chain(tls["cert"], tls["key"])
    return ctx


def peer_name(cert):
    for field in (cert or {}).get("subject", ()):
        for key, value in field:
            if key == "commonName":
                return value
    return ""


class Busy(bk.BackupError):
    """The source answered 409: it is streaming another backup."""


def get(cfg, address, path, timeout=STATUS_TIMEOUT):
    """The response of another agent (HTTPS, this host's certificate; the peer's is checked
    against the internal CA and its address); an answer other than 200 raises BackupError (Busy
    for 409: a backup is running there)."""
    conn = HTTPSConnection(address, int(cfg["port"]), timeout=timeout, context=client_context(cfg))
    conn.request("GET", path)
    answer = conn.getresponse()
    if answer.status != 200:
        body = answer.read().decode("utf-8", "replace")
        conn.close()
        error = Busy if answer.status == 409 else bk.BackupError
        raise error("%s:%s%s answered %s: %s" % (address, cfg["port"], path, answer.status, body[:300]))
    return answer


def when_free(request, address, wait, poll=BUSY_POLL, clock=time.monotonic, sleep=time.sleep):
    """request() again while its source answers Busy, for at most `wait` seconds (nothing was
    received before a 409: trying again is safe)."""
    deadline = clock() + wait
    told = False
    while True:
        try:
            return request()
        except Busy:
            if clock() + poll > deadline:
                raise bk.BackupError(
                    "%s streamed another backup for over %d s (a scheduled backup, another rebuild): "
                    "try again when it is done" % (address, wait)
                ) from None
            if not told:
                log("%s streams another backup: waiting for it (at most %d s)" % (address, wait))
                told = True
            sleep(poll)


def get_json(cfg, address, path, timeout=STATUS_TIMEOUT):
    with get(cfg, address, path, timeout) as answer:
        return json.loads(answer.read().decode("utf-8"))


# --- the source (a database host) --------------------------------------------------------------


def connect(cfg, socket_path=None, read_timeout=10):
    import pymysql  # noqa: PLC0415 - only where a server runs
    import pymysql.cursors  # noqa: PLC0415

    return pymysql.connect(
        unix_socket=socket_path or cfg["source"]["socket"],
        user="root",
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
        connect_timeout=3,
        read_timeout=read_timeout,
    )


def source_status(cfg):
    """What the repository needs to choose a source: read-only, replicating, lag, position."""
    try:
        conn = connect(cfg)
        try:
            cur = conn.cursor()
            cur.execute("SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.gtid_current_pos AS gtid")
            row = cur.fetchone()
            cur.execute("SHOW SLAVE STATUS")
            replica = cur.fetchone()
        finally:
            conn.close()
    except Exception as exc:  # pylint: disable=broad-except
        return {"ok": False, "error": str(exc), "name": cfg["name"]}
    replicating = (
        bool(replica) and replica.get("Slave_IO_Running") == "Yes" and replica.get("Slave_SQL_Running") == "Yes"
    )
    lag = (replica or {}).get("Seconds_Behind_Master")
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
    """mariadb-backup --backup --stream=xbstream, written as frames to `out` (one at a time)."""

    lock = threading.Lock()

    def __init__(self, cfg, lsn):
        self.cfg, self.lsn = cfg, int(lsn or 0)

    def run(self, out):
        source = self.cfg["source"]
        os.makedirs(source["tmpdir"], mode=0o700, exist_ok=True)
        work = tempfile.mkdtemp(dir=source["tmpdir"], prefix="stream-")
        lsndir = os.path.join(work, "lsn")
        cmd = [
            "mariadb-backup",
            "--backup",
            "--stream=xbstream",
            "--socket=%s" % source["socket"],
            "--user=root",
            "--target-dir=%s" % os.path.join(work, "target"),
            "--extra-lsndir=%s" % lsndir,
        ]
        if self.lsn:
            cmd.append("--incremental-lsn=%d" % self.lsn)
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
    state = {}
    if os.path.exists(state_path):
        with open(state_path) as handle:
            state = json.load(handle)
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
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, bk.metrics_text(values))


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
    path = os.path.join(os.path.dirname(path), "webinfra_binlog_archive.prom")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, bk.metrics_text(values))


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


def primary_of(cfg):
    """(name, address, server_id) of the writable source, asked over TLS with the archive account."""
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
            if int(row["ro"]) == 0:
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
        have = sorted(n for n in os.listdir(directory) if not n.startswith("."))
        start = have[-1] if have and have[-1] in logs else (logs[0] if logs else None)
        if have and have[-1] not in logs:
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


# --- restore (on the target host) --------------------------------------------------------------


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603
    if proc.returncode != 0:
        raise bk.BackupError("%s failed (%d): %s" % (cmd[0], proc.returncode, (proc.stderr or proc.stdout)[-1500:]))
    return proc.stdout


def fetch(cfg, repository, path, sink, expected_sha256=None):
    """The repository's file `path` written to `sink`, read to its end even when the sink
    fails (a damaged file breaks the decompressor): the checksum verdict comes first."""
    digest, broken = hashlib.sha256(), None
    with get(cfg, repository, "/files/" + quote(path), timeout=600) as answer:
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


def unpack_chain(cfg, plan, repository, work):
    """Each backup of the chain streamed from the repository into work/<id> (checked against
    its SHA-256 on the way), then prepared: work/<first id> is a data directory."""
    for ident in plan["chain"]:
        target = os.path.join(work, ident)
        os.makedirs(target)
        zstd = subprocess.Popen(["zstd", "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # noqa: S603,S607
        mbstream = subprocess.Popen(["mbstream", "-x", "-C", target], stdin=zstd.stdout)  # noqa: S603,S607
        zstd.stdout.close()
        try:
            fetch(cfg, repository, "base/%s/backup.xb.zst" % ident, zstd.stdin, plan["sha256"].get(ident))
        except BaseException:
            zstd.kill()
            mbstream.kill()
            raise
        finally:
            zstd.stdin.close()
            failed = zstd.wait() != 0
            failed = mbstream.wait() != 0 or failed
        if failed:
            raise bk.BackupError("unpacking backup %s failed" % ident)
    full = os.path.join(work, plan["chain"][0])
    run(["mariadb-backup", "--prepare", "--target-dir=%s" % full])
    for ident in plan["chain"][1:]:
        incremental = "--incremental-dir=%s" % os.path.join(work, ident)
        run(["mariadb-backup", "--prepare", "--target-dir=%s" % full, incremental])
    return full


def replay(cfg, plan, repository, work, socket_path, binlog=True):
    """The archived binary logs after the backup, server by server in the order they were
    written, each from the position reached so far; returns (position, files replayed).
    binlog=False: the replayed transactions are not written to this server's binary log (a
    rebuilt replica, whose position is then set to what was reached)."""
    reached, replayed = plan["gtid"], []
    client = ["mariadb", "--socket=%s" % socket_path, "--binary-mode"]
    if not binlog:
        client.append("--init-command=SET SESSION sql_log_bin=0")
    for server_id, files in bk.segments(plan["binlogs"]):
        if plan["to_gtid"] and reached and bk.gtid_util.contains(reached, plan["to_gtid"]):
            break
        paths = []
        for f in files:
            local = os.path.join(work, "binlog", server_id, f["name"])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as sink:
                fetch(cfg, repository, "binlog/%s/%s" % (server_id, f["name"]), sink)
            paths.append(local)
        cmd = ["mariadb-binlog"]
        if reached:
            cmd.append("--start-position=%s" % reached)
        if plan["to_time"] is not None:
            cmd.append("--stop-datetime=%s" % bk.format_time(plan["to_time"]))
        if plan["to_gtid"]:
            cmd.append("--stop-position=%s" % plan["to_gtid"])
        statements = os.path.join(work, "replay-%s.sql" % server_id)
        with open(statements, "wb") as out:
            proc = subprocess.run(cmd + paths, stdout=out, stderr=subprocess.PIPE, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise bk.BackupError("mariadb-binlog failed: %s" % proc.stderr.decode("utf-8", "replace")[-1500:])
        with open(statements, "rb") as source:
            proc = subprocess.run(client, stdin=source, capture_output=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise bk.BackupError(
                "replaying the binary logs failed: %s" % proc.stderr.decode("utf-8", "replace")[-1500:]
            )
        with open(statements, "rb") as source:
            reached = bk.last_gtid(source.read().decode("utf-8", "replace"), reached)
        replayed += [f["name"] for f in files]
    return reached, replayed


def binlog_basename(cfg, socket_path):
    """The running server's binary-log base name (None when it does not run or logs none)."""
    try:
        conn = connect(cfg, socket_path)
    except Exception:  # pylint: disable=broad-except
        return None
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@GLOBAL.log_bin_basename AS base")
        return (cur.fetchone() or {}).get("base")
    finally:
        conn.close()


def install_datadir(cfg, prepared, datadir, service, socket_path, label):
    """Put the prepared copy `prepared` in place of `datadir` and start the server. Nothing is
    deleted: the old data directory and its binary logs are kept beside it
    (<datadir>.before-<label>-<id>); the copy's replication files from its source are dropped
    (it starts replicating nothing); the data gets a new incarnation. Returns the kept path."""
    base = binlog_basename(cfg, socket_path)
    run(["systemctl", "stop", service])
    kept = ""
    if os.path.exists(datadir):
        kept = "%s.before-%s-%s" % (datadir.rstrip("/"), label, bk.backup_id(time.time()))
        os.rename(datadir, kept)
        if base and not base.startswith(datadir.rstrip("/") + "/"):
            # Binary logs outside the data directory belong to the old data: kept with it, so
            # the server starts with the copy's position, not the old one's transactions.
            folder, prefix = os.path.split(base)
            moved = os.path.join(kept, "binlogs")
            for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                if name.startswith(os.path.basename(prefix) + "."):
                    os.makedirs(moved, mode=0o700, exist_ok=True)
                    shutil.move(os.path.join(folder, name), os.path.join(moved, name))
    for name in SOURCE_REPLICATION_FILES:
        if os.path.exists(os.path.join(prepared, name)):
            os.unlink(os.path.join(prepared, name))
    os.rename(prepared, datadir)
    run(["chown", "-R", "mysql:mysql", datadir])
    new_incarnation()
    run(["systemctl", "start", service])
    return kept


def restore(cfg, plan, repository, datadir="/var/lib/mysql", service="mariadb", socket_path="/run/mysqld/mysqld.sock"):
    """Fetch the plan's chain, prepare it, put it in place of `datadir` (the old one is kept
    beside it), start the server, replay the archived binary logs; returns what was reached."""
    work = os.path.join(os.path.dirname(datadir.rstrip("/")), "webinfra-restore")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, mode=0o700)
    full = unpack_chain(cfg, plan, repository, work)
    kept = install_datadir(cfg, full, datadir, service, socket_path, "restore")
    reached, replayed = replay(cfg, plan, repository, work, socket_path) if plan["replay"] else (plan["gtid"], [])
    shutil.rmtree(work, ignore_errors=True)
    return {
        "backup": plan["chain"][-1],
        "chain": plan["chain"],
        "backup_gtid": plan["gtid"],
        "gtid_reached": reached,
        "binlogs_replayed": replayed,
        "previous_datadir": kept,
    }


# --- rebuild (on the database host that gets a new copy of the data) ---------------------------


def peer_statuses(cfg):
    """/status of every database host (this one asked directly: it may be down)."""
    statuses = {}
    for peer in cfg["peers"]["sources"]:
        if peer["name"] == cfg["name"]:
            statuses[peer["name"]] = source_status(cfg)
            continue
        try:
            statuses[peer["name"]] = get_json(cfg, peer["address"], "/status")
        except Exception as exc:  # pylint: disable=broad-except
            statuses[peer["name"]] = {"ok": False, "error": str(exc)}
    return statuses


def newest_backup(cfg):
    """(repository address, restore plan to the end of its archive) of the first repository
    that holds a backup, or (None, None)."""
    for repository in cfg["peers"].get("repositories", []):
        try:
            listed = get_json(cfg, repository["address"], "/catalog", timeout=30)
        except Exception as exc:  # pylint: disable=broad-except
            log("rebuild: repository %s does not answer: %s" % (repository["name"], exc))
            continue
        if listed.get("plan"):
            plan = dict(listed["plan"], replay=True)
            started = next(b["started"] for b in listed["backups"] if b["id"] == plan["chain"][-1])
            plan["binlogs"] = bk.binlog_replay_files(listed["binlogs"], started)
            return repository, plan
    return None, None


def stream_copy(cfg, address, work):
    """A full backup of the server at `address` streamed straight into work/full and prepared;
    returns its record (GTID position)."""
    target = os.path.join(work, "full")
    os.makedirs(target)
    mbstream = subprocess.Popen(["mbstream", "-x", "-C", target], stdin=subprocess.PIPE)  # noqa: S603,S607
    try:
        report = when_free(lambda: receive_stream(cfg, address, 0, mbstream.stdin), address, BUSY_WAIT)
    finally:
        mbstream.stdin.close()
        if mbstream.wait() != 0:
            raise bk.BackupError("unpacking the stream from %s failed" % address)
    check_report(report, address)
    run(["mariadb-backup", "--prepare", "--target-dir=%s" % target])
    return target, bk.backup_record(report["info"], report["checkpoints"])


def stop_ha_agent():
    """The HA agent must not act on this server while its data is replaced: stopped here, started
    again by the playbook once replication is configured. Returns whether it ran."""
    active = subprocess.run(["systemctl", "is-active", "--quiet", "webinfra-ha-agent"], check=False)  # noqa: S603,S607
    if active.returncode == 0:
        run(["systemctl", "stop", "webinfra-ha-agent"])
        return True
    return False


def rebuild(cfg, source="auto", dry_run=False, datadir="/var/lib/mysql", service="mariadb"):
    """A new copy of the data for this database host, from a healthy replica's stream, the
    newest backup (and the archived binary logs after it) or the primary's stream; this server
    is left with no replication configured and its GTID position set to the copy's, ready to
    replicate from the primary. Every refusal comes before anything changes."""
    socket_path = cfg["source"]["socket"]
    statuses = peer_statuses(cfg)
    repository, backup_plan = newest_backup(cfg) if source in ("auto", "backup") else (None, None)
    plan = bk.rebuild_plan(
        cfg["name"], statuses, cfg["peers"].get("max_lag", 60), source=source, have_backup=backup_plan is not None
    )
    addresses = {p["name"]: p["address"] for p in cfg["peers"]["sources"]}
    plan["primary_address"] = addresses[plan["primary"]]
    if plan["kind"] == "backup":
        plan["backup"] = backup_plan["chain"][-1]
        plan["repository"] = repository["name"]
    if dry_run:
        return dict(plan, dry_run=True)
    started = time.time()
    work = os.path.join(os.path.dirname(datadir.rstrip("/")), "webinfra-rebuild")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, mode=0o700)
    log("rebuild of %s from %s (%s)" % (cfg["name"], plan["source"] or "backup %s" % plan["backup"], plan["reason"]))
    if plan["kind"] == "stream":
        prepared, record = stream_copy(cfg, addresses[plan["source"]], work)
        gtid = record.get("gtid") or ""
    else:
        prepared = unpack_chain(cfg, backup_plan, repository["address"], work)
        gtid = backup_plan["gtid"]
    plan["ha_agent_stopped"] = stop_ha_agent()
    plan["previous_datadir"] = install_datadir(cfg, prepared, datadir, service, socket_path, "rebuild")
    conn = connect(cfg)
    try:
        cur = conn.cursor()
        cur.execute("STOP ALL SLAVES")
        cur.execute("RESET SLAVE ALL")
        cur.execute("RESET MASTER")
    finally:
        conn.close()
    replayed = []
    if plan["kind"] == "backup":
        gtid, replayed = replay(cfg, backup_plan, repository["address"], work, socket_path, binlog=False)
    conn = connect(cfg)
    try:
        conn.cursor().execute("SET GLOBAL gtid_slave_pos = %s", (gtid,))
    finally:
        conn.close()
    shutil.rmtree(work, ignore_errors=True)
    return dict(plan, gtid=gtid, binlogs_replayed=replayed, duration=round(time.time() - started, 3))


# --- restore drill (on the backup host) ---------------------------------------------------------


class ScratchServer:
    """A private mariadbd on a restored data directory: no network, no binary log, no
    replication; stopped when the block ends. Its grant tables stay on: the archived binary
    logs replayed into it may manage accounts; root comes in through the socket as on the source."""

    def __init__(self, datadir, work):
        self.datadir, self.work = datadir, work
        self.socket = os.path.join(work, "mysqld.sock")
        self.proc = None

    def __enter__(self):
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
            "--user=root",
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
    work = repo_dir(cfg, "drill")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, mode=0o700)
    result = {"backup": target["id"], "gtid": target.get("gtid", ""), "compared_with": None, "mismatches": []}
    try:
        first = os.path.join(work, "newest")
        os.makedirs(first)
        datadir = unpack_chain(cfg, newest, address, first)
        with ScratchServer(datadir, first) as server:
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
            with ScratchServer(datadir, second) as server:
                reached, replayed = replay(cfg, other, address, second, server.socket, binlog=False)
                again = server.checksums()
            result.update(compared_with=other["chain"][-1], gtid_reached=reached, binlogs_replayed=len(replayed))
            result["mismatches"] = sorted(name for name in set(sums) | set(again) if sums.get(name) != again.get(name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["ok"] = not result["mismatches"]
    result["duration"] = round(time.time() - started, 3)
    return result


def write_drill_metrics(cfg, result):
    """The last drill's result beside the backups' metrics (and in the repository's drill.json)."""
    state_path = repo_dir(cfg, "drill.json")
    state = {}
    if os.path.exists(state_path):
        with open(state_path) as handle:
            state = json.load(handle)
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
    path = os.path.join(os.path.dirname(path), "webinfra_restore_drill.prom")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, bk.metrics_text(values))


# --- the HTTPS service -------------------------------------------------------------------------


def make_handler(cfg):
    stream_clients = set(cfg.get("stream_clients") or [])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):
            log("%s %s" % (self.address_string(), fmt % args))

        def send_body(self, code, body, kind="application/json"):
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            client = peer_name(self.connection.getpeercert())
            try:
                if url.path == "/status" and cfg.get("source"):
                    self.send_body(200, json.dumps(source_status(cfg)))
                elif url.path == "/backup" and cfg.get("source"):
                    if client not in stream_clients:
                        self.send_body(403, json.dumps({"error": "%s may not stream backups" % client}))
                        return
                    if not BackupStream.lock.acquire(False):
                        self.send_body(409, json.dumps({"error": "a backup is running on this host"}))
                        return
                    try:
                        lsn = int((parse_qs(url.query).get("lsn") or ["0"])[0])
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.end_headers()
                        log("backup stream to %s (lsn %d)" % (client, lsn))
                        BackupStream(cfg, lsn).run(self.wfile)
                    finally:
                        BackupStream.lock.release()
                elif url.path == "/catalog" and cfg.get("repository"):
                    self.send_body(200, json.dumps(catalog(cfg)))
                elif url.path.startswith("/files/") and cfg.get("repository"):
                    self.send_file(url.path[len("/files/") :])
                else:
                    self.send_body(404, json.dumps({"error": "not found"}))
            except (BrokenPipeError, ConnectionResetError):
                return

        def send_file(self, relative):
            root = os.path.realpath(cfg["repository"]["dir"])
            path = os.path.realpath(os.path.join(root, relative))
            inside = path.startswith(os.path.join(root, "base") + os.sep) or path.startswith(
                os.path.join(root, "binlog") + os.sep
            )
            if not inside or not os.path.isfile(path) or ".partial" in path or path.endswith("meta.json"):
                self.send_body(404, json.dumps({"error": "not found"}))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(os.path.getsize(path)))
            self.end_headers()
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, self.wfile, CHUNK)

    return Handler


def serve(cfg):
    server = ThreadingHTTPServer((cfg["listen"], int(cfg["port"])), make_handler(cfg))
    server.socket = server_context(cfg).wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_a: threading.Thread(target=server.shutdown).start())
    sd_notify("READY=1")
    log("webinfra-backup-agent %s on %s:%s" % (cfg["name"], cfg["listen"], cfg["port"]))
    server.serve_forever()
    return 0


def emit(value):
    sys.stdout.write(json.dumps(value, sort_keys=True) + "\n")
    return 0


def command_take(cfg, args):
    try:
        meta = take(cfg, force_full=args.full)
    except Exception:
        write_metrics(cfg, run_ok=False)
        raise
    write_metrics(cfg, run_ok=True)
    return emit(meta)


def command_restore(cfg, args):
    with open(args.plan) as handle:
        plan = json.load(handle)
    return emit(restore(cfg, plan, args.repository))


def command_drill(cfg, _args):
    try:
        result = drill(cfg)
    except Exception as exc:
        write_drill_metrics(cfg, {"ok": False, "error": str(exc)})
        raise
    write_drill_metrics(cfg, result)
    emit(result)
    if not result["ok"]:
        log("restore drill: the tables differ: %s" % ", ".join(result["mismatches"]))
        return 1
    return 0


def command_rebuild(cfg, args):
    try:
        result = rebuild(cfg, source=args.source, dry_run=args.dry_run)
    except bk.BackupError as exc:
        # The playbook shows the reason (a refusal changes nothing).
        emit({"error": str(exc)})
        log("webinfra-backup rebuild: %s" % exc)
        return 1
    return emit(result)


COMMANDS = {
    "serve": lambda cfg, _args: serve(cfg),
    "take": command_take,
    "archive": lambda cfg, _args: archive(cfg),
    "catalog": lambda cfg, args: emit(catalog(cfg, args.backup, args.to_time, args.to_gtid)),
    "restore": command_restore,
    "rebuild": command_rebuild,
    "drill": command_drill,
    "metrics": lambda cfg, _args: write_metrics(cfg) or 0,
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="webinfra-backup")
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("config")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--backup")
    parser.add_argument("--to-time")
    parser.add_argument("--to-gtid")
    parser.add_argument("--plan")
    parser.add_argument("--repository")
    parser.add_argument("--source", default="auto")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    try:
        return COMMANDS[args.command](cfg, args)
    except bk.BackupError as exc:
        log("webinfra-backup %s: %s" % (args.command, exc))
        return 1
