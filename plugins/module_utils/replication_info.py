# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only replication facts in one schema across MariaDB and MySQL."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.webinfra.distributed.plugins.module_utils.replication import read_status


def _variables(cursor, names):
    cursor.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (%s)" % ", ".join(["%s"] * len(names)), names)
    return {row["Variable_name"].lower(): row["Value"] for row in cursor.fetchall()}


def _on(value):
    return str(value).upper() in ("ON", "1", "YES", "TRUE")


def gather(cursor, flavor, channel=""):
    names = [
        "server_id",
        "read_only",
        "log_bin",
        "binlog_format",
        "log_slave_updates",
        "log_replica_updates",
        "gtid_strict_mode",
        "gtid_binlog_pos",
        "gtid_current_pos",
        "gtid_slave_pos",
        "gtid_executed",
        "gtid_mode",
        "super_read_only",
        "gtid_domain_id",
        "rpl_semi_sync_master_enabled",
        "rpl_semi_sync_slave_enabled",
        "rpl_semi_sync_source_enabled",
        "rpl_semi_sync_replica_enabled",
    ]
    var = _variables(cursor, names)
    info = {
        "flavor": flavor.name,
        "version": flavor.version_string,
        "server_id": int(var.get("server_id", 0) or 0),
        "read_only": _on(var.get("read_only")),
        "super_read_only": _on(var.get("super_read_only")) if "super_read_only" in var else None,
        "log_bin": _on(var.get("log_bin")),
        "binlog_format": var.get("binlog_format"),
        "log_replica_updates": _on(var.get("log_replica_updates", var.get("log_slave_updates"))),
    }
    if flavor.is_mariadb:
        info["gtid"] = {
            "mode": "mariadb",
            "strict_mode": _on(var.get("gtid_strict_mode")),
            "domain_id": int(var.get("gtid_domain_id", 0) or 0),
            "binlog_pos": var.get("gtid_binlog_pos", ""),
            "current_pos": var.get("gtid_current_pos", ""),
            "replica_pos": var.get("gtid_slave_pos", ""),
            "executed": var.get("gtid_current_pos", ""),
        }
    else:
        info["gtid"] = {
            "mode": "mysql",
            "enabled": str(var.get("gtid_mode", "OFF")).upper() == "ON",
            "executed": var.get("gtid_executed", ""),
        }
    status = read_status(cursor, flavor, channel)
    info["is_replica"] = status is not None
    info["replica"] = status
    info["replicas"] = connected_replicas(cursor, flavor)
    info["is_primary"] = not info["read_only"] and status is None
    return info


def connected_replicas(cursor, flavor):
    """Replicas currently connected to this server (binlog dump threads)."""
    cursor.execute(
        "SELECT ID AS id, USER AS user, HOST AS host, TIME AS seconds FROM information_schema.PROCESSLIST "
        "WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID')"
    )
    rows = cursor.fetchall() or []
    replicas = []
    for row in rows:
        host = str(row.get("host") or "")
        replicas.append(
            {
                "thread_id": row.get("id"),
                "user": row.get("user"),
                "host": host.rsplit(":", 1)[0],
                "connected_seconds": row.get("seconds"),
            }
        )
    hosts = _replica_hosts(cursor, flavor)
    for replica in replicas:
        replica["server_id"] = hosts.get(replica["host"])
    return replicas


def _replica_hosts(cursor, flavor):
    statement = "SHOW REPLICAS" if (not flavor.is_mariadb and flavor.version >= (8, 0, 22)) else "SHOW SLAVE HOSTS"
    try:
        cursor.execute(statement)
    except Exception:  # pylint: disable=broad-except  # needs REPLICATION MASTER ADMIN on MariaDB
        return {}
    out = {}
    for row in cursor.fetchall() or []:
        host = row.get("Host") or ""
        server_id = row.get("Server_id") or row.get("Server_Id")
        if host:
            out[host] = server_id
    return out
