# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An errant former primary rejoins by itself (Patroni's pg_rewind, for MariaDB's binary log).

A leader that lost its lease can hold transactions in its binary log that no other server
received: commits that waited for a semi-sync acknowledgement which never came (so none was
acknowledged to a client). After the failover they make it errant. Here they are

1. found: the binary-log events after the position the new leader took over from (recorded in
   etcd's `last_failover`, with this server as `from`), every one of them this server's own
   writes in one replication domain, row events only (no DDL: flashback cannot undo it);
2. saved for audit under the agent's state directory (the events, readable and replayable, and
   the statements that undo them);
3. undone with `mariadb-binlog --flashback`, applied with the binary log off;
4. forgotten by the binary log (`RESET MASTER`, `gtid_slave_pos` set to the take-over position),
   so that the server replicates from the new leader from there.

Anything else (no record of the take-over position, another server's events or DDL in the
range, a tool failing) leaves the server errant, held out of the cluster: rebuild.yml stays the
fallback. `plan` and `check_events` are pure (unit-tested); `Rewind` runs the steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from ansible_collections.webinfra.distributed.plugins.module_utils import gtid
from webinfra_agents.kit import db as kit_db

# Statements a transaction of row events may carry besides its rows (no DDL among them).
TRANSACTION_QUERIES = ("BEGIN", "COMMIT", "ROLLBACK", "XA ")
ROW_EVENTS = ("Table_map", "Write_rows", "Update_rows", "Delete_rows", "Annotate_rows", "Xid", "Rows_query")
# Events of the binary log itself (a rotation to the next file, its header), no transaction's.
FILE_EVENTS = ("Rotate", "Stop", "Binlog_checkpoint", "Format_desc", "Gtid_list", "Start_encryption")


class RejoinRefused(Exception):
    """The errant transactions cannot be undone safely here (the message says why)."""


def plan(binlog_pos, take_over, leader_pos, me, last_failover):
    """(domain, server_id, first_seq, last_seq) of this server's errant transactions: those after
    `take_over` (the position the new leader took over from) in its binary log. RejoinRefused
    when they cannot be found safely."""
    if not last_failover or last_failover.get("from") != me or not last_failover.get("position"):
        raise RejoinRefused(
            "no record of where the new leader took over from this server (etcd's last_failover names %s)"
            % ((last_failover or {}).get("from") or "no former leader")
        )
    try:
        mine = gtid.parse_mariadb(binlog_pos)
        base = gtid.parse_mariadb(take_over)
        if not gtid.contains(leader_pos, take_over):
            raise RejoinRefused("the leader (%s) lacks the take-over position %s" % (leader_pos, take_over))
    except gtid.GtidError as exc:
        raise RejoinRefused("positions that cannot be compared: %s" % exc) from exc
    tails = []
    for domain, (server, seq) in sorted(mine.items()):
        if domain not in base:
            raise RejoinRefused("domain %d holds transactions the new leader never had" % domain)
        if seq > base[domain][1]:
            tails.append((domain, server, base[domain][1] + 1, seq))
    if not tails:
        raise RejoinRefused("nothing after the take-over position %s: not errant by it" % take_over)
    if len(tails) > 1:
        raise RejoinRefused("errant transactions in more than one domain: %s" % tails)
    return tails[0]


def check_events(events, domain, server, first, last):
    """From the rows of SHOW BINLOG EVENTS over the binary logs (each with Log_name, Pos,
    Event_type, Info), the (file, position) where the errant transactions start; RejoinRefused
    when anything from there on is not an errant row transaction of this server."""
    start = None
    seen = set()
    for event in events:
        kind, info = event["Event_type"], str(event.get("Info") or "")
        if kind == "Gtid":
            words = info.replace("BEGIN ", "").split()
            number = words[1] if len(words) > 1 and words[0] == "GTID" else ""
            parts = number.split("-")
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise RejoinRefused("unreadable GTID event %r in %s" % (info, event["Log_name"]))
            gdomain, gserver, gseq = (int(p) for p in parts)
            errant = gdomain == domain and gseq >= first
            if start is None and errant:
                start = (event["Log_name"], int(event["Pos"]))
            if start is None:
                continue
            if not errant or gserver != server or gseq > last:
                raise RejoinRefused("the errant range holds another transaction: GTID %s" % number)
            if not info.startswith("BEGIN"):
                raise RejoinRefused("GTID %s is no row transaction (DDL cannot be undone): %s" % (number, info))
            seen.add(gseq)
        elif start is not None and kind == "Query":
            if not info.upper().lstrip().startswith(TRANSACTION_QUERIES):
                raise RejoinRefused("a statement flashback cannot undo: %s" % info[:200])
        elif start is not None and not kind.startswith(ROW_EVENTS) and kind not in FILE_EVENTS:
            raise RejoinRefused("an event flashback cannot undo: %s %s" % (kind, info[:200]))
    if start is None:
        raise RejoinRefused("the errant GTIDs %d-%d-%d..%d are not in the binary log" % (domain, server, first, last))
    missing = set(range(first, last + 1)) - seen
    if missing:
        raise RejoinRefused("the binary log lacks errant GTIDs %s" % sorted(missing)[:10])
    return start


class Rewind:
    """The steps on the local server (root over its socket; mariadb-binlog on its binary logs)."""

    def __init__(self, db, audit_dir, run=subprocess.run, clock=time.time):
        self.db, self.audit_dir, self.run, self.clock = db, audit_dir, run, clock

    def binlog_events(self, cur):
        cur.execute("SHOW BINARY LOGS")
        files = [row["Log_name"] for row in cur.fetchall()]
        events = []
        for name in files:
            cur.execute("SHOW BINLOG EVENTS IN %s", (name,))
            events += cur.fetchall()
        return files, events

    def tool(self, argv, what, stdin=None):
        proc = self.run(argv, input=stdin, capture_output=True, check=False, timeout=300)
        if proc.returncode != 0:
            raise RejoinRefused("%s failed: %s" % (what, (proc.stderr or b"").decode("utf-8", "replace")[-500:]))
        return proc.stdout

    def rejoin(self, take_over, leader, last_failover, me):
        """Undo this server's errant transactions and reset its binary log to `take_over`;
        returns what was done (for the journal and /status). RejoinRefused: nothing changed
        (or, past the flashback, the server stays errant and says why)."""
        cur = self.db.cursor()
        cur.execute(
            "SELECT @@GLOBAL.gtid_binlog_pos AS binlog, @@GLOBAL.read_only AS ro, @@GLOBAL.log_bin_basename AS base"
        )
        row = cur.fetchone()
        if int(row["ro"]) != 1:
            raise RejoinRefused("the server is writable")
        domain, server, first, last = plan(
            str(row["binlog"] or ""), take_over, leader.get("gtid") or "", me, last_failover
        )
        files, events = self.binlog_events(cur)
        start_file, start_pos = check_events(events, domain, server, first, last)
        directory = os.path.dirname(str(row["base"]))
        paths = [os.path.join(directory, name) for name in files[files.index(start_file) :]]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        audit = os.path.join(self.audit_dir, "%s-%d-%d-%d" % (stamp, domain, server, first))
        os.makedirs(audit, mode=0o700, exist_ok=True)
        position = "--start-position=%d" % start_pos
        events_text = self.tool(["mariadb-binlog", "-vv", position, *paths], "mariadb-binlog (saving the events)")
        undo = self.tool(["mariadb-binlog", "--flashback", position, *paths], "mariadb-binlog --flashback")
        summary = {
            "at": self.clock(),
            "gtids": "%d-%d-%d..%d" % (domain, server, first, last),
            "transactions": last - first + 1,
            "take_over": take_over,
            "leader": leader.get("name"),
            "files": [os.path.basename(p) for p in paths],
            "start": [start_file, start_pos],
        }
        for name, data in (("errant-events.txt", events_text), ("flashback.sql", undo)):
            with open(os.path.join(audit, name), "wb") as handle:
                handle.write(data)
        with open(os.path.join(audit, "summary.json"), "w") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
        # Applied with the binary log off (the undo is no transaction of the cluster's history);
        # on standard input: --binary-mode (BINLOG statements) disables the client's `source`.
        client = [
            "mariadb",
            "--user=%s" % kit_db.os_user(),
            "--socket=%s" % self.db.cfg["socket"],
            "--binary-mode",
            "--init-command=SET SESSION sql_log_bin=0",
        ]
        self.tool(client, "applying the flashback", stdin=undo)
        cur = self.db.cursor()
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos AS binlog")
        if str(cur.fetchone()["binlog"] or "") != str(row["binlog"] or ""):
            raise RejoinRefused("the binary log moved while the flashback was applied")
        keep = ",".join("%d-%d-%d" % (d, s, q) for d, (s, q) in sorted(gtid.parse_mariadb(take_over).items()))
        cur.execute("RESET MASTER")
        cur.execute("SET GLOBAL gtid_slave_pos = %s", (keep,))
        summary["audit"] = audit
        return summary
