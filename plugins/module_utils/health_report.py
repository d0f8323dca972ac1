# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's health report, judged from what the plays of the health playbook gathered.

Pure functions (no Ansible objects needed): `build_report(hosts, ...)` takes, per host, the
results registered by the health playbook and returns rows, problems and a printable table.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import GtidError, parse_mariadb, parse_mysql

IGNORED_FSTYPES = ("tmpfs", "devtmpfs", "overlay-tmp")


def disk_usage(mounts):
    """The fullest real filesystem: {'mount', 'used_percent'} (None when there is none)."""
    worst = None
    for m in sorted(mounts or [], key=lambda m: m.get("mount", "")):
        total = m.get("size_total") or 0
        if total <= 0 or m.get("fstype") in IGNORED_FSTYPES:
            continue
        pct = round(100.0 * (1 - float(m.get("size_available", 0)) / total), 1)
        if worst is None or pct > worst["used_percent"]:
            worst = {"mount": m.get("mount", "?"), "used_percent": pct}
    return worst


def _mysql_count(intervals):
    return sum(end - start + 1 for start, end in intervals)


def gtid_gap(primary_pos, replica_pos):
    """Transactions the replica lacks, per replication domain (MariaDB) or server UUID (MySQL).

    Returns {domain: count}; a domain the replica never saw counts all of the primary's
    sequence. A replica ahead in a domain (errant transactions) counts 0 there."""
    primary_pos, replica_pos = (primary_pos or "").strip(), (replica_pos or "").strip()
    if not primary_pos:
        return {}
    if ":" in primary_pos or ":" in replica_pos:
        primary, replica = parse_mysql(primary_pos), parse_mysql(replica_pos)
        return {
            uuid: max(_mysql_count(intervals) - _mysql_count(replica.get(uuid, [])), 0)
            for uuid, intervals in sorted(primary.items())
        }
    primary, replica = parse_mariadb(primary_pos), parse_mariadb(replica_pos)
    return {
        str(domain): max(seq - replica.get(domain, (0, 0))[1], 0) for domain, (_server, seq) in sorted(primary.items())
    }


def _judge_backends(name, lb, writer_backends, rows, problems):
    if not lb.get("backends") and lb.get("backends") != {}:
        msg = lb.get("msg") or "no answer"
        rows.append([name, "haproxy", "FAIL", msg])
        problems.append("%s: haproxy: %s" % (name, msg))
        return
    for backend, info in sorted(lb["backends"].items()):
        servers = info.get("servers") or []
        if backend in writer_backends:
            # The writer endpoint: exactly one server (the writable primary) UP; the read-only
            # servers are DOWN there by design.
            up = [s["server"] for s in servers if s.get("status") == "UP"]
            ok = len(up) == 1
            detail = "writes go to %s" % up[0] if ok else "%d servers UP (exactly one expected)" % len(up)
            standby = [s["server"] for s in servers if s.get("status") != "UP"]
            if standby:
                detail += "; standby (read-only): %s" % ", ".join(standby)
            rows.append([name, "writer " + backend, "ok" if ok else "FAIL", detail])
            if not ok:
                problems.append(
                    "%s: writer endpoint %s has %s"
                    % (name, backend, ("servers UP: " + ", ".join(up)) if up else "no writable server UP")
                )
            continue
        for s in servers:
            ok = s.get("status") == "UP"
            rows.append(
                [
                    name,
                    "backend %s/%s" % (backend, s.get("server")),
                    "ok" if ok else "FAIL",
                    "%s, %s, %s sessions" % (s.get("status"), s.get("admin_state"), s.get("current_sessions")),
                ]
            )
            if not ok:
                problems.append("%s: %s/%s is %s" % (name, backend, s.get("server"), s.get("status")))


def _judge_replica(name, db, primary_db, max_lag, rows, problems):
    r = db["replica"]
    try:
        primary_pos = (primary_db or {}).get("gtid", {}).get("binlog_pos", "")
        gap = gtid_gap(primary_pos, db.get("gtid", {}).get("replica_pos", ""))
        gap_text = ",".join("%s:%d" % (k, v) for k, v in gap.items()) or "n/a"
    except GtidError as exc:
        gap_text = "unreadable (%s)" % exc
    lag = r.get("seconds_behind")
    running = bool(r.get("io_running")) and bool(r.get("sql_running"))
    ok = running and lag is not None and lag <= max_lag
    errors = " ".join(e for e in (r.get("last_io_error"), r.get("last_sql_error")) if e)
    detail = "io=%s sql=%s lag=%ss gtid_gap=%s" % (
        "yes" if r.get("io_running") else "no",
        "yes" if r.get("sql_running") else "no",
        lag,
        gap_text,
    )
    rows.append([name, "replica", "ok" if ok else "FAIL", detail + ((" " + errors) if errors and not ok else "")])
    if not ok:
        problems.append("%s: replica %s%s" % (name, detail, (" " + errors) if errors else ""))


def _judge_database(name, db, primary_db, max_lag, rows, problems):
    if "replica" not in db:
        msg = db.get("msg") or "no answer"
        rows.append([name, "database", "FAIL", msg])
        problems.append("%s: database: %s" % (name, msg))
    elif db["replica"]:
        _judge_replica(name, db, primary_db, max_lag, rows, problems)
    else:
        ok = not db.get("read_only")
        rows.append(
            [
                name,
                "primary",
                "ok" if ok else "FAIL",
                "%s, %d replica(s) connected, gtid %s"
                % (
                    "writable" if ok else "read-only",
                    len(db.get("replicas") or []),
                    db.get("gtid", {}).get("binlog_pos", ""),
                ),
            ]
        )
        if not ok:
            problems.append("%s: primary is read-only" % name)


def _judge_endpoints(name, results, rows, problems):
    for r in results or []:
        ok = bool(r.get("ok"))
        detail = (
            "HTTP %s in %s ms" % (r.get("status"), r.get("latency_ms")) if ok else ", ".join(r.get("problems") or [])
        )
        rows.append([name, r.get("name", "endpoint"), "ok" if ok else "FAIL", detail])
        if not ok:
            problems.append("%s: %s: %s" % (name, r.get("name", "endpoint"), detail))


def _judge_ha(name, result, rows, problems):
    """The HA agent's /status (a uri result): its role, the leader it sees, pause, errant."""
    state = result.get("json") if isinstance(result, dict) else None
    if result.get("status") != 200 or not isinstance(state, dict):
        detail = "the HA agent does not answer (%s)" % (result.get("msg") or result.get("status"))
        rows.append([name, "ha agent", "FAIL", detail])
        problems.append("%s: %s" % (name, detail))
        return None
    detail = "%s, leader %s" % (state.get("role"), state.get("leader") or "none")
    ok = bool(state.get("leader")) and not state.get("errant")
    if state.get("paused"):
        detail += ", PAUSED (no automatic failover)"
    if state.get("errant"):
        detail += ", errant: %s" % state["errant"]
    if not state.get("leader") and state.get("blocked"):
        detail += ", may not take over: %s" % state["blocked"]
    rows.append([name, "ha agent", "ok" if ok else "FAIL", detail])
    if not ok:
        problems.append("%s: ha agent %s" % (name, detail))
    return state.get("leader")


def table(rows):
    if not rows:
        return []
    w0 = max(len(str(r[0])) for r in rows)
    w1 = max(len(str(r[1])) for r in rows)
    return ["%s  %s  %-4s  %s" % (str(r[0]).ljust(w0), str(r[1]).ljust(w1), r[2], r[3]) for r in rows]


def build_report(
    hosts,
    primary=None,
    writer_backends=("db_writer",),
    vip="",
    loadbalancers=(),
    max_lag=5,
    max_disk_percent=90,
):
    """Judge the stack.

    hosts: {name: {'reached': bool, 'disk': disk_usage() or None, 'lb': haproxy_info result,
                   'vip_held': bool, 'app': health_check result, 'monitoring': health_check
                   result, 'db': replication_info result, 'ha': uri result of the HA agent's
                   /status}} - every key but 'reached' optional.
    primary: the name of the primary database host (its GTID position is the reference).
    """
    rows, problems = [], []
    leaders = set()
    for name in sorted(hosts):
        h = hosts[name] or {}
        if h.get("reached") and isinstance(h.get("ha"), dict) and not h["ha"].get("skipped"):
            leader = _judge_ha(name, h["ha"], rows, problems)
            if leader:
                leaders.add(leader)
    if len(leaders) > 1:
        problems.append("the HA agents see different leaders: %s" % ", ".join(sorted(leaders)))
    if len(leaders) == 1:
        primary = next(iter(leaders))  # with the HA agents the leader is the reference, not the inventory
    primary_db = (hosts.get(primary) or {}).get("db") if primary else None
    for name in sorted(hosts):
        h = hosts[name] or {}
        if not h.get("reached"):
            rows.append([name, "host", "FAIL", "unreachable"])
            problems.append("%s: unreachable" % name)
            continue
        if h.get("model") is False:
            detail = "the stack model could not be computed for it (see the run's first play): not checked"
            rows.append([name, "stack", "FAIL", detail])
            problems.append("%s: %s" % (name, detail))
        disk = h.get("disk")
        if disk:
            ok = float(disk["used_percent"]) < float(max_disk_percent)
            detail = "%s %s%% used" % (disk["mount"], disk["used_percent"])
            rows.append([name, "disk", "ok" if ok else "FAIL", detail])
            if not ok:
                problems.append("%s: disk %s" % (name, detail))
        if h.get("lb") is not None:
            _judge_backends(name, h["lb"], set(writer_backends), rows, problems)
        if h.get("app") is not None:
            _judge_endpoints(name, h["app"].get("results"), rows, problems)
        if h.get("monitoring") is not None:
            _judge_endpoints(name, h["monitoring"].get("results"), rows, problems)
        if h.get("db") is not None:
            _judge_database(name, h["db"], primary_db, max_lag, rows, problems)
    vip_holder = None
    if vip:
        holders = sorted(n for n in loadbalancers if (hosts.get(n) or {}).get("vip_held"))
        vip_holder = holders[0] if len(holders) == 1 else None
        ok = len(holders) == 1
        detail = (
            "held by %s" % holders[0]
            if ok
            else ("held by nobody" if not holders else "held by %d balancers: %s" % (len(holders), ", ".join(holders)))
        )
        rows.append(["virtual IP", vip, "ok" if ok else "FAIL", detail])
        if not ok:
            problems.append("virtual IP %s is %s" % (vip, detail))
    return {
        "healthy": not problems,
        "problems": problems,
        "checks": rows,
        "table": table(rows),
        "vip_holder": vip_holder,
    }
