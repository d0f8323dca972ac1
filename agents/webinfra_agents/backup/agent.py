# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup agent's commands: physical backups streamed from a database host to the backup
host, the binary-log archive, restores and rebuilds. The decisions are in archive.py; the host
roles in source.py (database hosts), repository.py (backup hosts), restore.py (restore and
rebuild targets), drill.py and service.py (the HTTPS service); this module is the command line.

    webinfra-backup serve   CONFIG   HTTPS service (mutual TLS, the internal CA)
    webinfra-backup take    CONFIG [--full]    one backup (the systemd timer)
    webinfra-backup archive CONFIG   the binary-log archiver (a systemd service)
    webinfra-backup catalog CONFIG [--backup ID] [--to-time T] [--to-gtid G]
    webinfra-backup restore CONFIG --plan FILE   (on the restore target)
    webinfra-backup rebuild CONFIG [--source auto|backup|primary|HOST] [--dry-run]
                                   (on a database host: a new copy of the data)
    webinfra-backup drill   CONFIG   a restore drill on the backup host (a systemd timer)
    webinfra-backup metrics CONFIG
    webinfra-backup stream  SOCKET   one mariadb-backup stream: the LSN on standard input, the
                                     frames on standard output (webinfra-backup-stream@.service;
                                     SOCKET is the database server's)

CONFIG (JSON, root-only, written by the backup role) has `name`, `listen`, `port`, `tls`
({ca, cert, key}: the host's certificate from the internal CA), `clients` (the certificate
names this agent answers at all: every other one gets 403), and a `source` section on database hosts
({socket, tmpdir}, and `peers`: the database hosts and repositories a rebuild asks) and/or a
`repository` section on backup hosts ({dir, sources, keep_full,
incrementals_per_full, max_lag, allow_primary, compress_level, textfile, binlog}).

On a source: GET /status (read-only? replicating? lag) and GET /backup?lsn=N (mariadb-backup's
xbstream in frames, see backup.frame). On a repository: GET /catalog and GET /files/... (the
stored backups and archived binary logs, for a restore target).
"""

from __future__ import annotations

import argparse
import json
import sys

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup.common import load_config
from webinfra_agents.backup.drill import drill, write_drill_metrics
from webinfra_agents.backup.repository import archive, catalog, take, write_metrics
from webinfra_agents.backup.restore import rebuild, restore
from webinfra_agents.backup.service import serve
from webinfra_agents.backup.source import serve_stream
from webinfra_agents.kit.daemon import log


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
    "stream": None,  # handled before the settings are read (see main)
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
    if args.command == "stream":
        # The stream helper reads no settings (they are root's): only the server's socket.
        return serve_stream(args.config, sys.stdin.buffer, sys.stdout.buffer)
    cfg = load_config(args.config)
    try:
        return COMMANDS[args.command](cfg, args)
    except bk.BackupError as exc:
        log("webinfra-backup %s: %s" % (args.command, exc))
        return 1
