# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target role: a restore from the repository (point in time included), and the rebuild of a
database host from a healthy replica, the newest backup or the primary."""

from __future__ import annotations

import os
import shutil
import time

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup.common import BUSY_WAIT, SOURCE_REPLICATION_FILES, when_free
from webinfra_agents.backup.host import Host
from webinfra_agents.backup.repository import check_report
from webinfra_agents.kit.daemon import log

# --- restore (on the target host) --------------------------------------------------------------


def unpack_chain(cfg, plan, repository, work, host=None):
    """Each backup of the chain streamed from the repository into work/<id> (checked against
    its SHA-256 on the way), then prepared: work/<first id> is a data directory."""
    host = host or Host(cfg)
    bk.check_plan_names(plan)
    for ident in plan["chain"]:
        target = os.path.join(work, ident)
        os.makedirs(target)
        with host.unpacker(target, compressed=True) as sink:
            host.fetch(repository, "base/%s/backup.xb.zst" % ident, sink, plan["sha256"].get(ident))
    full = os.path.join(work, plan["chain"][0])
    host.run(["mariadb-backup", "--prepare", "--target-dir=%s" % full])
    for ident in plan["chain"][1:]:
        incremental = "--incremental-dir=%s" % os.path.join(work, ident)
        host.run(["mariadb-backup", "--prepare", "--target-dir=%s" % full, incremental])
    return full


def replay(cfg, plan, repository, work, socket_path, binlog=True, host=None):
    """The archived binary logs after the backup, server by server in the order they were
    written, each from the position reached so far; returns (position, files replayed).
    A server's segment is read only as far as the history the archive holds of the server it
    followed next agrees with it (archive.diverged_at): after a failover, the old primary's transactions
    its successor never had are not replayed, and the successor's are not skipped.
    binlog=False: the replayed transactions are not written to this server's binary log (a
    rebuilt replica, whose position is then set to what was reached)."""
    host = host or Host(cfg)
    bk.check_plan_names(plan)
    reached, replayed = plan["gtid"], []
    client = ["mariadb", "--socket=%s" % socket_path, "--binary-mode"]
    if not binlog:
        client.append("--init-command=SET SESSION sql_log_bin=0")
    segments = []
    for server_id, files in bk.segments(plan["binlogs"]):
        paths = []
        for f in files:
            local = os.path.join(work, "binlog", server_id, f["name"])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            if not os.path.exists(local):
                with open(local, "wb") as sink:
                    host.fetch(repository, "binlog/%s/%s" % (server_id, f["name"]), sink)
            paths.append(local)
        segments.append((server_id, files, paths))
    histories = segment_histories(host, work, segments) if len({s[0] for s in segments}) > 1 else []
    for index, (server_id, files, paths) in enumerate(segments):
        if plan["to_gtid"] and reached and bk.gtid_util.contains(reached, plan["to_gtid"]):
            break
        stop = plan["to_gtid"] or ""
        following = segments[index + 1][0] if index + 1 < len(segments) else None
        if following is not None and following != server_id:
            # This segment against what the next server's archive holds from here on.
            theirs = {}
            for later, seg in enumerate(segments[index + 1 :], start=index + 1):
                if seg[0] == following:
                    for domain, seqs in histories[later].items():
                        theirs.setdefault(domain, {}).update(seqs)
            cut = bk.diverged_at(histories[index], theirs)
            if cut is None or (cut and reached and bk.gtid_util.contains(reached, cut)):
                continue  # nothing of it past what was replayed is the history its successor has
            stop = bk.earlier(stop, cut)
        cmd = ["mariadb-binlog"]
        if reached:
            cmd.append("--start-position=%s" % reached)
        if plan["to_time"] is not None:
            cmd.append("--stop-datetime=%s" % bk.format_time(plan["to_time"]))
        if stop:
            cmd.append("--stop-position=%s" % stop)
        statements = os.path.join(work, "replay-%d-%s.sql" % (index, server_id))
        host.binlog_to_sql(cmd + paths, statements)
        host.apply_sql(client, statements)
        with open(statements, "rb") as source:
            reached = bk.last_gtid(source.read().decode("utf-8", "replace"), reached)
        replayed += [f["name"] for f in files]
    return reached, replayed


def segment_histories(host, work, segments):
    """[archive.history of each segment's files] (one mariadb-binlog read of each, nothing
    applied): a server's files before and after a reset of its binary log (a rejoin) are in
    different segments, and each is compared on its own."""
    out = []
    for index, (server_id, _files, paths) in enumerate(segments):
        text_path = os.path.join(work, "history-%d-%s.txt" % (index, server_id))
        host.binlog_to_sql(["mariadb-binlog", *paths], text_path)
        with open(text_path, "rb") as source:
            out.append(bk.history(source.read().decode("utf-8", "replace")))
    return out


def install_datadir(cfg, prepared, datadir, service, socket_path, label, host=None):
    """Put the prepared copy `prepared` in place of `datadir` and start the server. Nothing is
    deleted: the old data directory and its binary logs are kept beside it
    (<datadir>.before-<label>-<id>); the copy's replication files from its source are dropped
    (it starts replicating nothing); the data gets a new incarnation. Returns the kept path."""
    host = host or Host(cfg)
    base = host.binlog_basename(socket_path)
    host.stop(service)
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
    host.chown(datadir, "mysql:mysql")
    host.new_incarnation()
    host.start(service)
    return kept


def restore(
    cfg,
    plan,
    repository,
    datadir="/var/lib/mysql",
    service="mariadb",
    socket_path="/run/mysqld/mysqld.sock",
    host=None,
):
    """Fetch the plan's chain, prepare it, put it in place of `datadir` (the old one is kept
    beside it), start the server, replay the archived binary logs; returns what was reached."""
    host = host or Host(cfg)
    work = os.path.join(os.path.dirname(datadir.rstrip("/")), "webinfra-restore")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, mode=0o700)
    full = unpack_chain(cfg, plan, repository, work, host)
    kept = install_datadir(cfg, full, datadir, service, socket_path, "restore", host)
    reached, replayed = (
        replay(cfg, plan, repository, work, socket_path, host=host) if plan["replay"] else (plan["gtid"], [])
    )
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


def peer_statuses(cfg, host):
    """/status of every database host (this one asked directly: it may be down)."""
    statuses = {}
    for peer in cfg["peers"]["sources"]:
        if peer["name"] == cfg["name"]:
            statuses[peer["name"]] = host.own_status()
            continue
        try:
            statuses[peer["name"]] = host.get_json(peer["address"], "/status")
        except Exception as exc:  # pylint: disable=broad-except
            statuses[peer["name"]] = {"ok": False, "error": str(exc)}
    return statuses


def newest_backup(cfg, host):
    """(repository, restore plan to the end of its archive) of the first repository that holds
    a backup, or (None, None)."""
    for repository in cfg["peers"].get("repositories", []):
        try:
            listed = host.get_json(repository["address"], "/catalog", timeout=30)
        except Exception as exc:  # pylint: disable=broad-except
            log("rebuild: repository %s does not answer: %s" % (repository["name"], exc))
            continue
        if listed.get("plan"):
            plan = dict(listed["plan"], replay=True)
            started = next(b["started"] for b in listed["backups"] if b["id"] == plan["chain"][-1])
            plan["binlogs"] = bk.binlog_replay_files(listed["binlogs"], started)
            return repository, bk.check_plan_names(plan)
    return None, None


def stream_copy(address, work, host):
    """A full backup of the server at `address` streamed straight into work/full and prepared;
    returns its path and record (GTID position)."""
    target = os.path.join(work, "full")
    os.makedirs(target)
    with host.unpacker(target, compressed=False) as sink:
        report = when_free(lambda: host.receive_stream(address, 0, sink), address, BUSY_WAIT)
    check_report(report, address)
    host.run(["mariadb-backup", "--prepare", "--target-dir=%s" % target])
    return target, bk.backup_record(report["info"], report["checkpoints"])


def stop_ha_agent(host):
    """The HA agent must not act on this server while its data is replaced: stopped here, started
    again by the playbook once replication is configured. Returns whether it ran."""
    if host.active("webinfra-ha-agent"):
        host.stop("webinfra-ha-agent")
        return True
    return False


def rebuild(cfg, source="auto", dry_run=False, datadir="/var/lib/mysql", service="mariadb", host=None):
    """A new copy of the data for this database host, from a healthy replica's stream, the
    newest backup (and the archived binary logs after it) or the primary's stream; this server
    is left with no replication configured and its GTID position set to the copy's, ready to
    replicate from the primary. Every refusal comes before anything changes."""
    host = host or Host(cfg)
    socket_path = cfg["source"]["socket"]
    statuses = peer_statuses(cfg, host)
    repository, backup_plan = newest_backup(cfg, host) if source in ("auto", "backup") else (None, None)
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
        prepared, record = stream_copy(addresses[plan["source"]], work, host)
        gtid = record.get("gtid") or ""
    else:
        prepared = unpack_chain(cfg, backup_plan, repository["address"], work, host)
        gtid = backup_plan["gtid"]
    plan["ha_agent_stopped"] = stop_ha_agent(host)
    plan["previous_datadir"] = install_datadir(cfg, prepared, datadir, service, socket_path, "rebuild", host)
    host.execute([("STOP ALL SLAVES", None), ("RESET SLAVE ALL", None), ("RESET MASTER", None)])
    replayed = []
    if plan["kind"] == "backup":
        gtid, replayed = replay(cfg, backup_plan, repository["address"], work, socket_path, binlog=False, host=host)
    host.execute([("SET GLOBAL gtid_slave_pos = %s", (gtid,))])
    shutil.rmtree(work, ignore_errors=True)
    return dict(plan, gtid=gtid, binlogs_replayed=replayed, duration=round(time.time() - started, 3))
