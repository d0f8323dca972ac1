# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Physical backups, binary-log archive and point-in-time restore: the decisions.

Pure functions (no server, no network), used by backup_agent.py (the service on the database
and backup hosts) and unit-tested on their own:

- what mariadb-backup reports (mariadb_backup_info, mariadb_backup_checkpoints);
- which database server a backup is taken from (a healthy replica when there is one);
- full or incremental (an incremental continues the chain of its source server only);
- which backups retention removes, and which archived binary logs go with them;
- what a restore needs: the chain of backups before the target time, the archived binary
  logs after it, or the reason it is refused;
- the stream framing between the services, and the metrics for node exporter's textfile
  collector.

A backup is a directory `<repository>/base/<id>` with `backup.xb.zst` (mariadb-backup's xbstream,
compressed with zstd) and `meta.json`; ids are UTC times (YYYYmmddTHHMMSSZ) so that names sort
by age. Archived binary logs live in `<repository>/binlog/<server_id>/`, as the server wrote them.
"""

from __future__ import annotations

import calendar
import re
import struct
import time

from ansible_collections.webinfra.distributed.plugins.module_utils import gtid as gtid_util

ID_FORMAT = "%Y%m%dT%H%M%SZ"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class BackupError(ValueError):
    """A request that cannot be met; the message says why (shown to the operator as is)."""


# --- what mariadb-backup reports ---------------------------------------------------------------


def parse_key_values(text):
    """mariadb_backup_info / mariadb_backup_checkpoints ('key = value' lines) -> dict."""
    out = {}
    for line in (text or "").splitlines():
        if "=" in line:
            key, _sep, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


BINLOG_POS = re.compile(r"filename '([^']*)', position '(\d+)'(?:, GTID of the last change '([^']*)')?")


def parse_binlog_pos(value):
    """mariadb_backup_info's binlog_pos -> (file, position, gtid); (None, None, '') without one."""
    match = BINLOG_POS.search(value or "")
    if not match:
        return None, None, ""
    return match.group(1), int(match.group(2)), match.group(3) or ""


def backup_record(info_text, checkpoints_text):
    """The facts a backup's meta.json keeps from mariadb-backup's own files."""
    info, checkpoints = parse_key_values(info_text), parse_key_values(checkpoints_text)
    binlog_file, binlog_pos, gtid = parse_binlog_pos(info.get("binlog_pos"))
    return {
        "binlog_file": binlog_file,
        "binlog_pos": binlog_pos,
        "gtid": gtid,
        "from_lsn": int(checkpoints.get("from_lsn", 0) or 0),
        "to_lsn": int(checkpoints.get("to_lsn", 0) or 0),
        "server_version": info.get("server_version", ""),
        "tool_version": info.get("tool_version", ""),
    }


# --- ids and times -----------------------------------------------------------------------------


def backup_id(epoch):
    return time.strftime(ID_FORMAT, time.gmtime(epoch))


# Names a repository's catalog hands a restore target, which become paths there: checked first,
# so a compromised or damaged repository cannot make a target write outside its work directory.
SAFE_NAMES = {
    "backup id": re.compile(r"^\d{8}T\d{6}Z$"),
    "server id": re.compile(r"^\d{1,10}$"),
    "binary log name": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"),
}


def safe_name(kind, value):
    """`value` when it is a well-formed `kind` (a key of SAFE_NAMES, never a path), else BackupError."""
    text = str(value)
    if not SAFE_NAMES[kind].match(text) or ".." in text:
        raise BackupError("the repository's catalog names a %s %r: refused (not a plain name)" % (kind, text[:80]))
    return text


def check_plan_names(plan):
    """Every name of a restore plan that becomes a path (its chain, its binary logs), checked."""
    for ident in plan.get("chain") or []:
        safe_name("backup id", ident)
    for f in plan.get("binlogs") or []:
        safe_name("server id", f["server_id"])
        safe_name("binary log name", f["name"])
    return plan


def id_time(backup):
    return calendar.timegm(time.strptime(backup, ID_FORMAT))


def parse_time(text, name="restore_to_time"):
    """'YYYY-MM-DD HH:MM:SS' (UTC) -> epoch seconds."""
    try:
        return calendar.timegm(time.strptime(str(text).strip(), TIME_FORMAT))
    except ValueError:
        raise BackupError("%s must be a UTC time as 'YYYY-MM-DD HH:MM:SS', is %r" % (name, text)) from None


def format_time(epoch):
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


# --- where and what to back up -----------------------------------------------------------------


def choose_source(statuses, max_lag, allow_primary=True):
    """The server to back up: the first healthy replica by name (read-only, both replication
    threads running, at most `max_lag` seconds behind); else, when allowed, the writable server.

    statuses: {name: {"ok", "read_only", "replicating", "lag"}} as the sources report them.
    Returns (name, reason)."""
    replicas, primaries, refused = [], [], []
    for name in sorted(statuses):
        status = statuses[name] or {}
        if not status.get("ok"):
            refused.append("%s: %s" % (name, status.get("error") or "does not answer"))
        elif not status.get("read_only"):
            primaries.append(name)
        elif not status.get("replicating"):
            refused.append("%s: read-only but not replicating" % name)
        elif status.get("lag") is None or int(status["lag"]) > int(max_lag):
            refused.append("%s: %s s behind (at most %s)" % (name, status.get("lag"), max_lag))
        else:
            replicas.append(name)
    if replicas:
        return replicas[0], "a healthy replica"
    if primaries and allow_primary:
        return primaries[0], "the primary (no healthy replica: %s)" % ("; ".join(refused) or "none")
    raise BackupError("no server to back up: %s" % ("; ".join(refused) or "no source answered"))


def chains(backups):
    """Backups (meta dicts, any order) grouped in chains: each a full backup and its
    incrementals, oldest first; chains oldest first. Incrementals whose parent is gone are left out."""
    ordered = sorted(backups, key=lambda b: b["id"])
    out, by_id = [], {}
    for backup in ordered:
        if backup.get("kind") == "full":
            chain = [backup]
            out.append(chain)
            by_id[backup["id"]] = chain
        else:
            chain = by_id.get(backup.get("parent"))
            if chain is not None and chain[-1]["id"] == backup["parent"]:
                chain.append(backup)
                by_id[backup["id"]] = chain
    return out


def next_backup(backups, source, incrementals_per_full, force_full=False, incarnation=""):
    """('full', None, 0) or ('incremental', parent_id, lsn): an incremental continues the newest
    chain when that chain was taken from the same server and holds fewer than
    `incrementals_per_full` incrementals (InnoDB page LSNs belong to one server)."""
    all_chains = chains(backups)
    if force_full or not all_chains or int(incrementals_per_full) <= 0:
        return "full", None, 0
    chain = all_chains[-1]
    if chain[0].get("source") != source or len(chain) - 1 >= int(incrementals_per_full):
        return "full", None, 0
    if (chain[0].get("incarnation") or "") != (incarnation or ""):
        # The server's data was replaced since (a restore or a rebuild): its pages have other LSNs.
        return "full", None, 0
    last = chain[-1]
    return "incremental", last["id"], int(last["to_lsn"])


def to_prune(backups, keep_full):
    """The backup ids retention removes: every chain but the newest `keep_full` (at least 1)."""
    all_chains = chains(backups)
    keep = max(1, int(keep_full))
    kept = {b["id"] for chain in all_chains[-keep:] for b in chain}
    return sorted(b["id"] for b in backups if b["id"] not in kept)


def archive_start(have, logs, stamp):
    """Where the archive follows a server from, and which archived files it first moves aside:
    (start file or None, [(archived name, new name)]). `have`: the names archived so far (sorted),
    `logs`: the server's binary logs now. The last archived file still there: from it (its rest).
    Gone, with the server's names now at or below it: the server's binary log was reset (RESET
    MASTER when a former primary rejoined) and numbers its files from the start again, so the
    archived files of the same names - its earlier history, which a restore may still need - are
    renamed `<name>.before-<stamp>` before new ones of those names are written (every archived
    name from its first one on: it writes them all again in time). Gone, with only
    later names: purged before the archive read it (a gap)."""
    if have and have[-1] in logs:
        return have[-1], []
    if not logs:
        return None, []
    start = logs[0]
    # Every archived name the server will write again (a purge leaves only later names: none).
    reused = [name for name in have if name >= start]
    return start, [(name, "%s.before-%s" % (name, stamp)) for name in reused]


def binlogs_to_prune(binlogs, backups_kept):
    """Archived binary-log files no kept backup needs: those whose last write is older than the
    oldest kept backup's start (their events are in every kept backup). binlogs: [{path, mtime}]."""
    if not backups_kept:
        return []
    oldest = min(float(b["started"]) for b in backups_kept)
    return sorted(f["path"] for f in binlogs if float(f["mtime"]) < oldest - 60)


# --- rebuild (re-seeding a database host) -------------------------------------------------------


def _healthy_replica(status, max_lag):
    return (
        status.get("ok")
        and status.get("read_only")
        and status.get("replicating")
        and status.get("lag") is not None
        and int(status["lag"]) <= int(max_lag)
    )


def rebuild_plan(target, statuses, max_lag, source="auto", have_backup=False):
    """Where `target` (a database host) gets its new copy of the data, and whom it replicates from.

    statuses: {name: /status of every database host}, the target's included (it may be down).
    source: "auto" (a healthy replica, else the newest backup with the archived binary logs,
    else a stream from the primary), "backup", "primary" or a host name.
    Returns {"kind": "stream"|"backup", "source": name (None for a backup), "primary": name,
    "reason": why}; refuses (BackupError) what must not be done: the primary itself, no
    primary or two, a source that cannot serve."""
    if target not in statuses:
        raise BackupError(
            "%s is not a database host of the stack (they are: %s)" % (target, ", ".join(sorted(statuses)))
        )
    own = statuses[target] or {}
    if own.get("ok") and not own.get("read_only"):
        raise BackupError(
            "%s is the writable primary: it is never rebuilt. Hand its role over first (switchover.yml),"
            " then rebuild it as a replica" % target
        )
    writable = sorted(n for n, s in statuses.items() if n != target and (s or {}).get("ok") and not s.get("read_only"))
    if not writable:
        raise BackupError("no writable primary answers: %s would have nothing to replicate from" % target)
    if len(writable) > 1:
        raise BackupError("more than one server is writable (%s): settle that first" % ", ".join(writable))
    primary = writable[0]
    healthy = sorted(
        (int(s["lag"]), n) for n, s in statuses.items() if n != target and _healthy_replica(s or {}, max_lag)
    )
    if source == "auto":
        if healthy:
            return {"kind": "stream", "source": healthy[0][1], "primary": primary, "reason": "a healthy replica"}
        if have_backup:
            return {
                "kind": "backup",
                "source": None,
                "primary": primary,
                "reason": "the newest backup (no healthy replica)",
            }
        return {
            "kind": "stream",
            "source": primary,
            "primary": primary,
            "reason": "the primary (no healthy replica, no backup)",
        }
    if source == "backup":
        if not have_backup:
            raise BackupError("rebuild_source=backup, but no backup repository holds a backup")
        return {"kind": "backup", "source": None, "primary": primary, "reason": "the newest backup (asked for)"}
    if source == "primary":
        return {"kind": "stream", "source": primary, "primary": primary, "reason": "the primary (asked for)"}
    if source == target:
        raise BackupError("%s cannot be rebuilt from itself" % target)
    if source == primary:
        return {"kind": "stream", "source": primary, "primary": primary, "reason": "the primary (asked for)"}
    if source not in statuses:
        raise BackupError(
            "rebuild_source %s is not a database host (they are: %s)" % (source, ", ".join(sorted(statuses)))
        )
    if not _healthy_replica(statuses[source] or {}, max_lag):
        status = statuses[source] or {}
        raise BackupError(
            "rebuild_source %s is no healthy replica (%s)"
            % (
                source,
                status.get("error") or "replicating: %s, %s s behind" % (status.get("replicating"), status.get("lag")),
            )
        )
    return {"kind": "stream", "source": source, "primary": primary, "reason": "a healthy replica (asked for)"}


# --- restore -----------------------------------------------------------------------------------


def restore_plan(backups, backup=None, to_time=None, to_gtid=None):
    """The chain to restore and where replay stops.

    backup: a backup id to restore (its chain up to it); default: the newest backup that
    finished before `to_time` (or the newest of all). to_time: epoch seconds (replay binary
    logs up to, not including, that second); to_gtid: replay up to and including that GTID.
    Returns {"chain": [ids], "gtid": the backup's position, "to_time", "to_gtid", "replay"}."""
    if to_time is not None and to_gtid:
        raise BackupError("give restore_to_time or restore_to_gtid, not both")
    if not backups:
        raise BackupError("the repository holds no backup")
    usable = chains(backups)
    flat = [b for chain in usable for b in chain]
    if backup:
        target = next((b for b in flat if b["id"] == backup), None)
        if target is None:
            raise BackupError(
                "no backup %s in the repository (it has: %s)" % (backup, ", ".join(b["id"] for b in flat))
            )
        if to_time is not None and float(target["finished"]) > to_time:
            raise BackupError(
                "backup %s finished at %s, after restore_to_time %s"
                % (backup, format_time(float(target["finished"])), format_time(to_time))
            )
    elif to_time is not None:
        before = [b for b in flat if float(b["finished"]) <= to_time]
        if not before:
            oldest = min(flat, key=lambda b: float(b["finished"]))
            raise BackupError(
                "restore_to_time %s is before the oldest backup (%s, finished %s): nothing to restore from"
                % (format_time(to_time), oldest["id"], format_time(float(oldest["finished"])))
            )
        target = max(before, key=lambda b: (float(b["finished"]), b["id"]))
    elif to_gtid:
        gtid_util.parse_mariadb(to_gtid)  # refuses what is not a GTID
        before = [b for b in flat if b.get("gtid") and gtid_util.contains(to_gtid, b["gtid"])]
        if not before:
            raise BackupError("every backup is past restore_to_gtid %s: nothing to restore from" % to_gtid)
        target = max(before, key=lambda b: (float(b["finished"]), b["id"]))
    else:
        target = max(flat, key=lambda b: (float(b["finished"]), b["id"]))
    chain = next(c for c in usable if target in c)
    chain = chain[: chain.index(target) + 1]
    if to_gtid:
        gtid_util.parse_mariadb(to_gtid)  # refuses what is not a GTID
        if target.get("gtid") and gtid_util.contains(target["gtid"], to_gtid) and target["gtid"] != to_gtid:
            raise BackupError(
                "backup %s is already past restore_to_gtid %s (it is at %s): choose an older backup"
                % (target["id"], to_gtid, target["gtid"])
            )
    return {
        "chain": [b["id"] for b in chain],
        "gtid": target.get("gtid", ""),
        "to_time": to_time,
        "to_gtid": to_gtid or "",
        "replay": to_time is not None or bool(to_gtid),
    }


def binlog_replay_files(archive, started):
    """Archived binary logs to replay after a backup started at `started`, in the order they
    were written: every server's files (a failover moves the archive to another server, whose
    files also hold the transactions it replicated; the GTID start position skips those).

    archive: [{server_id, name, first_event (epoch or None), mtime}]. A file is needed when it was
    still written after the backup started."""
    needed = [f for f in archive if float(f["mtime"]) >= float(started) - 1]
    return sorted(needed, key=lambda f: (float(f.get("first_event") or f["mtime"]), f["server_id"], f["name"]))


def segments(files):
    """Consecutive files of one server, in order: [(server_id, [files])]."""
    out = []
    for f in files:
        if out and out[-1][0] == f["server_id"]:
            out[-1][1].append(f)
        else:
            out.append((f["server_id"], [f]))
    return out


GTID_EVENT = re.compile(r"\bGTID (\d+-\d+-\d+)\b")
# mariadb-binlog's text: a file's starting state (Gtid_list event), or one transaction's GTID.
GTID_TOKEN = re.compile(r"Gtid list \[([^\]]*)\]|\bGTID (\d+)-(\d+)-(\d+)\b")


def history(binlog_text):
    """{domain: {seq: server}} of the transactions a server's binary logs name (mariadb-binlog's
    text of them): each GTID event, and each file's starting state (its Gtid list)."""
    out = {}
    for match in GTID_TOKEN.finditer(binlog_text or ""):
        if match.group(1) is not None:
            # The binary log's state: the last GTID per domain AND server (one domain may repeat).
            for entry in filter(None, (part.strip() for part in match.group(1).split(","))):
                domain, server, seq = (int(field) for field in entry.split("-"))
                out.setdefault(domain, {})[seq] = server
        else:
            domain, server, seq = int(match.group(2)), int(match.group(3)), int(match.group(4))
            out.setdefault(domain, {})[seq] = server
    return out


def diverged_at(mine, theirs):
    """Where the history `mine` leaves the history `theirs` (both from history()): the GTID list
    of `mine`'s last transaction before the first sequence number both name with different
    servers, per domain that has one; "" when they never disagree. A failover's old primary,
    read up to there, holds only what its successor also has: its later transactions (never
    acknowledged, rolled back when it rejoined) are not the cluster's history."""
    cut = {}
    for domain, seqs in mine.items():
        other = theirs.get(domain) or {}
        conflicts = [seq for seq, server in seqs.items() if seq in other and other[seq] != server]
        if not conflicts:
            continue
        first = min(conflicts)
        before = [seq for seq in seqs if seq < first]
        if not before:
            cut[domain] = None  # nothing of it before the split: the whole segment is not history
            continue
        last = max(before)
        cut[domain] = (seqs[last], last)
    if not cut:
        return ""
    if any(value is None for value in cut.values()):
        return None
    return ",".join("%d-%d-%d" % (d, server, seq) for d, (server, seq) in sorted(cut.items()))


def earlier(a, b):
    """The earlier of two GTID positions of one history ("" or None: no bound)."""
    if not a:
        return b
    if not b:
        return a
    return b if gtid_util.contains(a, b) else a


def last_gtid(binlog_text, current):
    """The position after replaying mariadb-binlog's output: its last GTID per domain, else
    `current` unchanged (positions as MariaDB GTID lists)."""
    position = gtid_util.parse_mariadb(current) if current else {}
    for match in GTID_EVENT.finditer(binlog_text or ""):
        domain, server, seq = (int(x) for x in match.group(1).split("-"))
        position[domain] = (server, seq)
    return ",".join("%d-%d-%d" % (d, s, q) for d, (s, q) in sorted(position.items()))


# --- the stream between the services ----------------------------------------------------------
# A backup's HTTP body: frames of 1 type byte and a 4-byte big-endian length: D (data: the
# xbstream), then one M (JSON: mariadb-backup's exit code and its report) or E (an error).

FRAME = struct.Struct(">cI")


def frame(kind, payload):
    return FRAME.pack(kind, len(payload)) + payload


def read_frames(read):
    """Yield (kind, payload) from a file-like read(n) until the end; a cut stream raises."""
    while True:
        head = _read_exactly(read, FRAME.size, allow_eof=True)
        if head is None:
            return
        kind, length = FRAME.unpack(head)
        yield kind, _read_exactly(read, length)


def _read_exactly(read, size, allow_eof=False):
    chunks, got = [], 0
    while got < size:
        chunk = read(size - got)
        if not chunk:
            if allow_eof and got == 0:
                return None
            raise BackupError("the stream ended early (%d of %d bytes)" % (got, size))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# --- metrics (node exporter's textfile collector) ----------------------------------------------

METRICS_HELP = {
    "webinfra_backup_last_success_timestamp_seconds": "When the newest complete backup finished.",
    "webinfra_backup_last_size_bytes": "Size of the newest complete backup (compressed).",
    "webinfra_backup_last_duration_seconds": "How long the newest complete backup took.",
    "webinfra_backup_last_run_success": "1 when the last backup run succeeded, 0 when it failed.",
    "webinfra_backup_last_run_timestamp_seconds": "When the last backup run ended.",
    "webinfra_backup_count": "Backups in the repository.",
    "webinfra_backup_bytes_total": "Bytes held by the backups in the repository.",
    "webinfra_binlog_archive_connected": "1 while the archive follows the primary's binary log.",
    "webinfra_binlog_archive_checked_timestamp_seconds": "When the archive last checked its stream.",
    "webinfra_binlog_archive_last_write_timestamp_seconds": "When the binary-log archive last grew.",
    "webinfra_binlog_archive_bytes_total": "Bytes held by the binary-log archive.",
    "webinfra_restore_drill_last_run_success": "1 when the last restore drill passed, 0 when it failed.",
    "webinfra_restore_drill_last_run_timestamp_seconds": "When the last restore drill ended.",
    "webinfra_restore_drill_last_success_timestamp_seconds": "When a restore drill last passed.",
    "webinfra_restore_drill_duration_seconds": "How long the last restore drill took.",
    "webinfra_restore_drill_tables": "Application tables the last restore drill checked.",
    "webinfra_restore_drill_compared": "1 when the last drill compared two independent restores (2+ backups).",
}
