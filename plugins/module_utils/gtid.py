# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GTID positions of MariaDB (domain-server-sequence lists) and MySQL (uuid:interval sets).

Pure functions: parse, compare, contain, pick the most advanced of several servers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class GtidError(ValueError):
    """A GTID position that cannot be parsed, or positions that cannot be ordered."""


def _is_mysql(text):
    return ":" in text


def parse_mariadb(text):
    """'0-1-100,1-2-5' -> {0: (1, 100), 1: (2, 5)} (one entry per replication domain)."""
    out = {}
    for raw in (text or "").replace("\n", "").split(","):
        part = raw.strip()
        if not part:
            continue
        fields = part.split("-")
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise GtidError("not a MariaDB GTID: %r" % part)
        domain, server, seq = (int(f) for f in fields)
        if domain in out:
            raise GtidError("domain %d appears twice in %r" % (domain, text))
        out[domain] = (server, seq)
    return out


def parse_mysql(text):
    """'uuid:1-5:7,uuid2:3' -> {uuid: set of transaction numbers as (start, end) intervals}."""
    out = {}
    for raw in (text or "").replace("\n", "").split(","):
        part = raw.strip()
        if not part:
            continue
        fields = part.split(":")
        uuid = fields[0].lower()
        if len(fields) < 2 or len(uuid) != 36:
            raise GtidError("not a MySQL GTID set: %r" % part)
        intervals = out.setdefault(uuid, [])
        for interval in fields[1:]:
            bounds = interval.split("-")
            if not 1 <= len(bounds) <= 2 or not all(b.isdigit() for b in bounds):
                raise GtidError("not a MySQL GTID interval: %r" % interval)
            start, end = int(bounds[0]), int(bounds[-1])
            intervals.append((start, end))
    return out


def _mysql_contains(big, small):
    for uuid, intervals in small.items():
        have = big.get(uuid, [])
        for start, end in intervals:
            if not any(s <= start and end <= e for s, e in have):
                return False
    return True


def contains(position, other):
    """True when `position` includes every transaction of `other` (it has applied at least that)."""
    if _is_mysql(position) or _is_mysql(other):
        return _mysql_contains(parse_mysql(position), parse_mysql(other))
    mine, theirs = parse_mariadb(position), parse_mariadb(other)
    return all(_mariadb_has(mine.get(domain), server, seq) for domain, (server, seq) in theirs.items())


def _mariadb_has(last, server, seq):
    """Whether a domain whose last GTID is `last` (server, seq) has transaction server-seq.

    A higher sequence number includes a lower one (strict mode: one history per domain). The
    same sequence number written by two servers is two different transactions: diverged.
    """
    if last is None:
        return False
    return last[1] > seq or (last[1] == seq and last[0] == server)


def compare(a, b):
    """0 when equal, 1 when a is ahead of b, -1 when behind, None when they diverged."""
    a_has_b, b_has_a = contains(a, b), contains(b, a)
    if a_has_b and b_has_a:
        return 0
    if a_has_b:
        return 1
    if b_has_a:
        return -1
    return None


def most_advanced(positions):
    """Name of the server whose position contains every other one's.

    `positions` maps names to GTID positions. Ties go to the first name in sorted order.
    Raises GtidError when no server contains all others (positions diverged).
    """
    if not positions:
        raise GtidError("no positions to compare")
    for name in sorted(positions):
        if all(contains(positions[name], other) for other in positions.values()):
            return name
    raise GtidError(
        "no server has every transaction of the others (diverged positions: %s)"
        % ", ".join("%s=%s" % (n, positions[n]) for n in sorted(positions))
    )


def union(a, b):
    """A position holding every transaction of `a` and of `b` (a replica's applied and received
    positions: what it has, applied or not). Raises GtidError when they diverged."""
    if _is_mysql(a or "") or _is_mysql(b or ""):
        merged = parse_mysql(a)
        for uuid, intervals in parse_mysql(b).items():
            merged.setdefault(uuid, []).extend(intervals)
        return ",".join(
            "%s:%s" % (uuid, ":".join(("%d" % s) if s == e else ("%d-%d" % (s, e)) for s, e in sorted(set(iv))))
            for uuid, iv in sorted(merged.items())
        )
    mine, theirs = parse_mariadb(a), parse_mariadb(b)
    for domain, (server, seq) in theirs.items():
        have = mine.get(domain)
        if have is None or have[1] < seq:
            mine[domain] = (server, seq)
        elif have[1] == seq and have[0] != server:
            raise GtidError("%s and %s diverged in domain %d" % (a, b, domain))
    return ",".join("%d-%d-%d" % (d, s, q) for d, (s, q) in sorted(mine.items()))
