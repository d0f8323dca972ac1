# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack model: the settings several tiers must agree on, computed once per host.

`build(host, inputs, groups, hostvars, role_defaults)` turns the documented `webinfra_*`
inputs, the inventory's groups and the hosts' addresses into one structure (groups, addresses,
ports, transport, writer endpoint, this host's firewall rules, the application's environment)
from which the playbooks take every role's parameters. Pure Python, no Ansible objects needed:
`hostvars` is any mapping of host name to a mapping of its variables.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import invalid_networks, known_address

# The documented inputs and their defaults (the stack role's defaults/main.yml and
# meta/argument_specs.yml say the same; a unit test keeps them in step).
DEFAULTS = {
    "webinfra_db_primary_group": "db_primary",
    "webinfra_db_replica_group": "db_replicas",
    "webinfra_monitoring": True,
    "webinfra_monitoring_group": "monitoring",
    "webinfra_etcd_group": "etcd",
    "webinfra_backup_group": "backups",
    "webinfra_backend_tls": True,
    "webinfra_backend_port": 0,
    "webinfra_vip": "",
    "webinfra_db_writer_endpoint": None,
    "webinfra_admin_networks": [],
    "webinfra_monitoring_ui_networks": None,
    "webinfra_app_db_read_host": "",
    "webinfra_app_env": {},
    "webinfra_app_system_packages": [],
    "webinfra_lab": False,
    "webinfra_acme": False,
    "webinfra_exporters_tls": False,
    "webinfra_public_addresses_allowed": False,
}

# Ports that cross tiers: model key -> (role, variable). The value is the variable where the
# inventory sets it for the host that serves the port, else the role's default: the role
# defaults are the one home of these numbers.
PORTS = {
    "db": ("mysql_replication", "mysql_replication_port"),
    "db_agent": ("mysql_replication", "mysql_replication_agent_port"),
    "db_writer": ("haproxy", "haproxy_db_writer_port"),
    "haproxy_stats": ("haproxy", "haproxy_stats_port"),
    "haproxy_metrics": ("haproxy", "haproxy_metrics_port"),
    "node_exporter": ("exporters", "exporters_node_port"),
    "nginx_exporter": ("exporters", "exporters_nginx_port"),
    "mysqld_exporter": ("exporters", "exporters_mysqld_port"),
    "prometheus": ("monitoring", "monitoring_prometheus_port"),
    "alertmanager": ("monitoring", "monitoring_alertmanager_port"),
    "etcd_client": ("etcd", "etcd_client_port"),
    "etcd_peer": ("etcd", "etcd_peer_port"),
    "backup_agent": ("backup", "backup_agent_port"),
    "acme_http": ("acme", "acme_http_port"),
    "ssh": ("firewall", "firewall_ssh_port"),
}

# Database settings the web servers' application needs: read from the primary's variables,
# else the role default (the passwords have none: the inventory must set them).
DB_SETTINGS = {
    "database": ("mysql_replication", "mysql_replication_app_database"),
    "writer_user": ("mysql_replication", "mysql_replication_app_writer_user"),
    "writer_password": ("mysql_replication", "mysql_replication_app_writer_password"),
    "reader_user": ("mysql_replication", "mysql_replication_app_reader_user"),
    "reader_password": ("mysql_replication", "mysql_replication_app_reader_password"),
    "semisync": ("mysql_replication", "mysql_replication_semisync"),
    "tls": ("mysql_replication", "mysql_replication_tls"),
}

# The timing automatic failover depends on across tiers: the HA agents' lease and the balancers'
# check of the writer endpoint (read from the primary and from every balancer).
TIMING = {
    "ttl": ("mysql_replication", "mysql_replication_ha_ttl"),
    "loop_wait": ("mysql_replication", "mysql_replication_ha_loop_wait"),
    "inter": ("haproxy", "haproxy_db_writer_check_inter"),
    "fall": ("haproxy", "haproxy_db_writer_check_fall"),
    "fastinter": ("haproxy", "haproxy_db_writer_check_fastinter"),
    "timeout": ("haproxy", "haproxy_db_writer_check_timeout"),
}
# The HA agents' cluster name (their etcd prefix /webinfra/<cluster>/), per database host.
HA_SETTINGS = {"cluster": ("mysql_replication", "mysql_replication_ha_cluster")}
# etcd users of the stack (etcd_auth_managed_prefix of the etcd role).
ETCD_USER_PREFIX = "webinfra-"
DURATION_UNITS = {"us": 0.000001, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

DB_SOCKET = "/run/mysqld/mysqld.sock"
APP_PACKAGES = ["python3-pymysql"]


class StackError(ValueError):
    """Input the stack cannot be built from; the message names the variable."""


def _bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise StackError(f"{name} must be true or false, is {value!r}")


def _port(value, name):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise StackError(f"{name} must be a port number (1-65535), is {value!r}") from None
    if not 1 <= port <= 65535:
        raise StackError(f"{name} must be a port number (1-65535), is {value!r}")
    return port


def _networks(value, name):
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)):
        raise StackError(f"{name} must be a list of addresses or CIDR networks, is {value!r}")
    entries = [str(v) for v in value]
    bad = invalid_networks(entries)
    if bad:
        raise StackError(f"{name}: not an address or CIDR network: {', '.join(bad)}")
    return entries


def check_address(host, address, source):
    """A host's private address must be an IPv4 address (IPv6 is refused with a reason)."""
    try:
        parsed = ipaddress.ip_address(str(address))
    except ValueError:
        raise StackError(f"{source} of {host} must be an IPv4 address, is {address!r}") from None
    if parsed.version != 4:
        raise StackError(
            f"{source} of {host} is {address}: IPv6 private addresses are not supported (the firewall, "
            "HAProxy, MariaDB and keepalived settings are written for IPv4); give each host an IPv4 "
            "address in webinfra_private_address"
        )
    return str(parsed)


# Private networks (RFC 1918, shared address space RFC 6598, link-local) beside Python's own list.
SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")


def private_address(address):
    """True for an address of a private network (RFC 1918, RFC 6598 shared space, loopback, link-local)."""
    parsed = ipaddress.ip_address(address)
    return parsed.is_private or parsed in SHARED_SPACE


def _members(groups, name):
    return list(groups.get(name) or [])


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


@dataclasses.dataclass
class Topology:
    """Who is what: the inventory's groups read through the stack's inputs."""

    primary_group: str
    replica_group: str
    monitoring_group: str
    etcd_group: str
    backup_group: str
    loadbalancers: list
    webservers: list
    primary: str
    replicas: list
    db_hosts: list
    monitoring: bool
    monitors: list
    etcd_hosts: list
    backup_hosts: list
    stack_hosts: list

    @property
    def db_groups(self):
        return [self.primary_group, self.replica_group]


def _config(inputs):
    """The inputs over DEFAULTS; an input the model does not know is refused."""
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in (inputs or {}).items() if k in DEFAULTS})
    unknown = sorted(set(inputs or {}) - set(DEFAULTS))
    if unknown:
        raise StackError(f"unknown stack inputs: {', '.join(unknown)}")
    return cfg


def _topology(cfg, groups):
    names = {
        name: str(cfg[name])
        for name in (
            "webinfra_db_primary_group",
            "webinfra_db_replica_group",
            "webinfra_monitoring_group",
            "webinfra_etcd_group",
            "webinfra_backup_group",
        )
    }
    for name, value in names.items():
        if not value.strip():
            raise StackError(f"{name} must name an inventory group")
    primary_group, replica_group = names["webinfra_db_primary_group"], names["webinfra_db_replica_group"]
    monitoring_group = names["webinfra_monitoring_group"]
    primaries, replicas = _members(groups, primary_group), _members(groups, replica_group)
    if len(primaries) > 1:
        raise StackError(
            f"the group '{primary_group}' (webinfra_db_primary_group) must hold one host, holds {', '.join(primaries)}"
        )
    db_hosts = _unique(primaries + replicas)
    monitoring = _bool(cfg["webinfra_monitoring"], "webinfra_monitoring")
    monitors = _members(groups, monitoring_group)
    if monitoring and not monitors:
        raise StackError(
            f"monitoring is enabled (webinfra_monitoring) but the inventory group '{monitoring_group}' "
            "has no host (webinfra_monitoring_group); add one (it may be a load balancer) or set "
            "webinfra_monitoring: false"
        )
    loadbalancers, webservers = _members(groups, "loadbalancers"), _members(groups, "webservers")
    # Automatic database failover: when the etcd group has members (the HA agents' consensus store).
    etcd_hosts = _members(groups, names["webinfra_etcd_group"]) if db_hosts else []
    # Backups (the backup role): when the backup group has hosts and there are databases.
    backup_hosts = _members(groups, names["webinfra_backup_group"]) if db_hosts else []
    return Topology(
        primary_group=primary_group,
        replica_group=replica_group,
        monitoring_group=monitoring_group,
        etcd_group=names["webinfra_etcd_group"],
        backup_group=names["webinfra_backup_group"],
        loadbalancers=loadbalancers,
        webservers=webservers,
        primary=primaries[0] if primaries else "",
        replicas=replicas,
        db_hosts=db_hosts,
        monitoring=monitoring,
        monitors=monitors,
        etcd_hosts=etcd_hosts,
        backup_hosts=backup_hosts,
        stack_hosts=_unique(
            loadbalancers + webservers + db_hosts + (monitors if monitoring else []) + etcd_hosts + backup_hosts
        ),
    )


def _addresses(cfg, topo, hostvars, partial):
    """(host -> private address, hosts without one): every stack host's, and the monitoring
    group's when monitoring is off (the balancers still let that group read their metrics)."""
    addresses, unaddressed = {}, []
    for name in _unique(topo.stack_hosts + topo.monitors):
        explicit = (hostvars.get(name) or {}).get("webinfra_private_address")
        address = known_address(hostvars.get(name) or {})
        if address is None and partial:
            addresses[name] = ""
            unaddressed.append(name)
            continue
        if address is None:
            raise StackError(f"no address for {name}: set webinfra_private_address for it or gather its facts")
        addresses[name] = check_address(
            name, address, "webinfra_private_address" if explicit else "the default route's address"
        )
    known = [a for a in addresses.values() if a]
    lab = _bool(cfg["webinfra_lab"], "webinfra_lab")
    if not lab and not _bool(cfg["webinfra_public_addresses_allowed"], "webinfra_public_addresses_allowed"):
        public = [f"{h} ({a})" for h, a in addresses.items() if a and not private_address(a)]
        if public:
            raise StackError(
                "the private addresses of " + ", ".join(public) + " are public: the databases, etcd and the agents "
                "would listen on them. Give each host an address of a private network (webinfra_private_address), "
                "or set webinfra_public_addresses_allowed: true when that network is closed anyway"
            )
    duplicates = sorted({a for a in known if known.count(a) > 1})
    if duplicates:
        shared = {a: [h for h, x in addresses.items() if x == a] for a in duplicates}
        raise StackError(
            "hosts share a private address (webinfra_private_address): "
            + "; ".join(f"{a}: {', '.join(hs)}" for a, hs in shared.items())
        )
    return addresses, unaddressed


class Settings:
    """The role variables several tiers share: as the inventory sets them for the host that
    serves them, else the owning role's default (the role defaults are their one home)."""

    def __init__(self, hostvars, role_defaults):
        self.hostvars, self.role_defaults = hostvars, role_defaults

    def get(self, owner, role, var):
        values = (self.hostvars.get(owner) or {}) if owner else {}
        if var in values and values[var] is not None:
            return values[var]
        defaults = self.role_defaults.get(role) or {}
        return defaults.get(var)

    def port(self, key, owner):
        role, var = PORTS[key]
        return _port(self.get(owner, role, var), var)


def _writer(cfg, topo, addresses, settings):
    """(enabled, address, port) of the writer endpoint the application writes to."""
    vip = str(cfg["webinfra_vip"] or "").strip()
    writer = cfg["webinfra_db_writer_endpoint"]
    writer = (
        (bool(vip) or bool(topo.etcd_hosts))
        if writer is None or str(writer).strip().lower() in ("", "auto")
        else _bool(writer, "webinfra_db_writer_endpoint")
    )
    writer = writer and bool(topo.loadbalancers) and bool(topo.primary)
    if writer:
        return True, vip or addresses[topo.loadbalancers[0]], settings.port("db_writer", topo.loadbalancers[0])
    return False, addresses.get(topo.primary, ""), settings.port("db", topo.primary or None)


def _seconds(value, name):
    """An HAProxy duration ("250ms", "1s", a bare number of milliseconds) in seconds."""
    text = str(value).strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :] or "ms"
    try:
        if unit not in DURATION_UNITS:
            raise ValueError(unit)
        return float(number) * DURATION_UNITS[unit]
    except ValueError:
        raise StackError(f"{name} must be an HAProxy duration (for example 250ms or 1s), is {value!r}") from None


def _failover_timing(topo, settings, writer):
    """Refuse check timings that could keep a frozen old primary UP on a balancer once a new
    one can be: the writer check must mark it DOWN before the leader lease can expire (the
    earliest a new leader is writable), ttl - loop_wait - 1 s after its last renewal."""
    if not (writer and topo.etcd_hosts and topo.primary):
        return
    ttl = float(settings.get(topo.primary, *TIMING["ttl"]))
    loop = float(settings.get(topo.primary, *TIMING["loop_wait"]))
    bound = ttl - loop - 1
    for lb in topo.loadbalancers:
        inter, fastinter, timeout = (
            _seconds(settings.get(lb, *TIMING[k]), TIMING[k][1]) for k in ("inter", "fastinter", "timeout")
        )
        fall = int(settings.get(lb, *TIMING["fall"]))
        down = inter + timeout + (fall - 1) * (fastinter + timeout)
        if down > bound:
            raise StackError(
                f"the writer endpoint's check on {lb} needs up to {down:g} s to mark a frozen primary DOWN "
                "(haproxy_db_writer_check_inter + haproxy_db_writer_check_timeout + "
                "(haproxy_db_writer_check_fall - 1) x (haproxy_db_writer_check_fastinter + "
                "haproxy_db_writer_check_timeout)), but a new leader can be "
                f"writable {bound:g} s after the old one's last renewal (mysql_replication_ha_ttl - "
                f"mysql_replication_ha_loop_wait - 1 s): shorten the check or raise mysql_replication_ha_ttl"
            )


def topology_hosts(inputs, groups):
    """Who is what, as host lists (for plugin_utils.readiness): the stack's hosts, the balancers,
    the database hosts, the monitoring and backup hosts, and whether monitoring is on."""
    topo = _topology(_config(inputs), groups)
    return {
        "stack": topo.stack_hosts,
        "loadbalancers": topo.loadbalancers,
        "db": topo.db_hosts,
        "monitors": topo.monitors if topo.monitoring else [],
        "backups": topo.backup_hosts,
        "monitoring": topo.monitoring,
    }


def admin_networks_problem(inputs):
    """Why the admin networks are refused ('' when they are not), for plugin_utils.readiness's
    one refusal: entries that are not networks, or every address outside the lab."""
    try:
        _admin_networks(_config(inputs))
    except StackError as exc:
        return str(exc)
    return ""


def _admin_networks(cfg):
    """(admin networks, monitoring UI networks); every address is refused outside the lab."""
    admin = _networks(cfg["webinfra_admin_networks"], "webinfra_admin_networks")
    ui = cfg["webinfra_monitoring_ui_networks"]
    ui = admin if ui is None else _networks(ui, "webinfra_monitoring_ui_networks")
    if not _bool(cfg["webinfra_lab"], "webinfra_lab"):
        for name, networks in (("webinfra_admin_networks", admin), ("webinfra_monitoring_ui_networks", ui)):
            everywhere = [n for n in networks if ipaddress.ip_network(n, strict=False).prefixlen == 0]
            if everywhere:
                raise StackError(
                    f"{name} holds {', '.join(everywhere)}: every address, so SSH, the statistics page and the "
                    "monitoring UIs would answer the whole Internet. List the networks you administer from "
                    "(allowed only in the lab, webinfra_lab: true)"
                )
    return admin, ui


def _acme(cfg, topo, addresses, settings):
    """ACME (the acme role): the first balancer asks for the certificate; every balancer's
    HAProxy sends HTTP-01 challenges to its lego, and it pushes the certificate to the others."""
    acme = _bool(cfg["webinfra_acme"], "webinfra_acme") and bool(topo.loadbalancers)
    issuer = topo.loadbalancers[0] if acme else ""
    address = addresses[issuer] if acme else ""
    port = settings.port("acme_http", issuer) if acme else 0
    return {
        "enabled": acme,
        "issuer": issuer,
        "challenge": f"{address}:{port}" if acme else "",
        "challenge_address": address,
        "challenge_port": port,
    }


def _firewall_rules(host, groups, topo, addresses, settings, networks, writer, acme):  # noqa: PLR0913
    """This host's firewall openings beyond its tier's own: sources are inventory groups or networks."""
    admin, ui = networks
    port = settings.port
    in_db, db_groups = host in topo.db_hosts, topo.db_groups
    rules = []

    def rule(key, sources, comment):
        rules.append({"port": port(key, host), "from": sources, "comment": comment})

    if host in topo.loadbalancers:
        rule("haproxy_stats", admin, "haproxy-stats")
    if acme["enabled"] and host == acme["issuer"]:
        rule("acme_http", ["loadbalancers"], "acme-http-01")
    if acme["enabled"] and host in topo.loadbalancers and host != acme["issuer"]:
        rule("ssh", [f"{addresses[acme['issuer']]}/32"], "acme-push")
    if in_db and topo.etcd_hosts:
        # The HA agent: /primary for the writer endpoint and the binary-log archive (which follows
        # the lease holder), /status for the other agents, /metrics.
        agent_from = [g for g in ["loadbalancers", *db_groups] if g in groups]
        if topo.monitoring:
            agent_from.append(topo.monitoring_group)
        if topo.backup_hosts:
            agent_from.append(topo.backup_group)
        rule("db_agent", agent_from, "db-ha-agent")
    if in_db and writer:
        rule("db", ["loadbalancers"], "db-writer-endpoint")
    if host in topo.etcd_hosts:
        rule("etcd_client", [topo.etcd_group, *db_groups], "etcd-client")
        rule("etcd_peer", [topo.etcd_group], "etcd-peer")
    if writer and host in topo.loadbalancers:
        rule("db_writer", ["webservers"], "db-writer-endpoint")
    if topo.backup_hosts and (in_db or host in topo.backup_hosts):
        # Backup streams (backup host <- source, rebuilds between database hosts) and the
        # repository's files (a restore target among the database or backup hosts).
        rule("backup_agent", [g for g in [topo.backup_group, *db_groups] if g in groups], "backup-agent")
    if topo.backup_hosts and in_db:
        rule("db", [topo.backup_group], "db-binlog-archive")
    if topo.monitoring and host in topo.stack_hosts:
        rule("node_exporter", [topo.monitoring_group], "node-exporter")
        for key, member, comment in (
            ("haproxy_metrics", host in topo.loadbalancers, "haproxy-metrics"),
            ("nginx_exporter", host in topo.webservers, "nginx-exporter"),
            ("mysqld_exporter", in_db, "mysqld-exporter"),
        ):
            if member:
                rule(key, [topo.monitoring_group], comment)
        if host in topo.monitors:
            rule("prometheus", ui, "prometheus")
            rule("alertmanager", ui, "alertmanager")
    return rules


def _endpoints(hosts, key, addresses, settings):
    """Each host's endpoint for a port key: its address and the port it serves itself."""
    return [{"name": h, "address": addresses[h], "port": settings.port(key, h)} for h in hosts]


def _monitoring_targets(host, topo, addresses, settings):
    """What Prometheus scrapes (on the monitoring hosts): every exporter at the port its own host
    serves, the same numbers the exporters listen on and the firewall rules open."""
    if not (topo.monitoring and host in topo.monitors):
        return {}
    return {
        job: _endpoints(hosts, key, addresses, settings)
        for job, hosts, key in (
            ("node", topo.stack_hosts, "node_exporter"),
            ("haproxy", topo.loadbalancers, "haproxy_metrics"),
            ("nginx", topo.webservers, "nginx_exporter"),
            ("mysqld", topo.db_hosts, "mysqld_exporter"),
            ("ha_agent", topo.db_hosts if topo.etcd_hosts else [], "db_agent"),
        )
    }


def _app_env(host, cfg, topo, addresses, settings, hostvars, writer_address, writer_port):  # noqa: PLR0913
    """The application's environment on a web server: how it reaches the databases, then
    webinfra_app_env, then nginx_app_env as the inventory sets it (the most specific wins)."""
    if host not in topo.webservers:
        return {}
    env = {}
    if topo.primary:

        def db(key):
            role, var = DB_SETTINGS[key]
            value = settings.get(topo.primary, role, var)
            if value is None or value == "":
                raise StackError(f"{var} is not set (the application's database account); set it in the inventory")
            return value

        env = {
            "DB_NAME": str(db("database")),
            "DB_WRITE_HOST": writer_address,
            "DB_WRITE_PORT": str(writer_port),
            "DB_WRITE_USER": str(db("writer_user")),
            "DB_WRITE_PASSWORD": str(db("writer_password")),
            "DB_READ_USER": str(db("reader_user")),
            "DB_READ_PASSWORD": str(db("reader_password")),
        }
        if host in topo.replicas:
            env["DB_READ_SOCKET"] = DB_SOCKET
        else:
            custom = str(cfg["webinfra_app_db_read_host"] or "")
            reader = (topo.replicas + [topo.primary])[0]
            env["DB_READ_HOST"] = custom or addresses[reader]
            # The reading server's own database port (a custom read host: the primary's).
            env["DB_READ_PORT"] = str(settings.port("db", topo.primary if custom else reader))
    for name, extra in (
        ("webinfra_app_env", cfg["webinfra_app_env"]),
        ("nginx_app_env", (hostvars.get(host) or {}).get("nginx_app_env")),
    ):
        if extra is None:
            continue
        if not isinstance(extra, dict):
            raise StackError(f"{name} must be a mapping of environment variable names to values")
        env.update({str(k): str(v) for k, v in extra.items()})
    return env


def _tiers_and_play_groups(host, topo):
    """This host's tiers, and the groups the later plays of a playbook target (group_by)."""
    in_db = host in topo.db_hosts
    tiers = [
        name
        for name, member in (
            ("loadbalancers", host in topo.loadbalancers),
            ("webservers", host in topo.webservers),
            ("db_primary", host == topo.primary),
            ("db_replicas", host in topo.replicas),
            ("monitoring", topo.monitoring and host in topo.monitors),
            ("etcd", host in topo.etcd_hosts),
            ("backups", host in topo.backup_hosts),
        )
        if member
    ]
    play_groups = []
    if tiers:
        play_groups.append("webinfra_stack")
        if topo.monitoring:
            play_groups.append("webinfra_exporters")
    if host in topo.etcd_hosts:
        play_groups.append("webinfra_etcd")
    if in_db:
        play_groups.append("webinfra_db")
    if topo.backup_hosts and (in_db or host in topo.backup_hosts):
        play_groups.append("webinfra_backup")
    if topo.monitoring and host in topo.monitors:
        play_groups.append("webinfra_monitoring")
    return tiers, play_groups


def _tls_purposes(host, topo, backend_tls, db_tls):
    """The certificates this host needs from the internal CA, one key pair per purpose (the pki
    role's pki_purposes): each service its own key, readable by that service alone."""
    in_db = host in topo.db_hosts
    wanted = (
        ("mariadb", in_db and db_tls),
        ("etcd", host in topo.etcd_hosts),
        # The HA agents' client certificate for etcd, and the etcd role's own (access control).
        ("etcd-client", bool(topo.etcd_hosts) and (in_db or host in topo.etcd_hosts)),
        ("backup", bool(topo.backup_hosts) and (in_db or host in topo.backup_hosts)),
        ("haproxy", host in topo.loadbalancers),
        ("nginx", host in topo.webservers and backend_tls),
        ("monitoring", topo.monitoring and host in topo.monitors),
        ("exporters", topo.monitoring and host in topo.stack_hosts),
    )
    return [name for name, needed in wanted if needed]


def _etcd_users(topo, settings):
    """etcd's users of the stack: each database host's HA agent its own, read-write on its
    cluster's prefix only (the passwords are added on the controller, plugin_utils.secrets)."""
    if not topo.etcd_hosts:
        return {}
    # etcd takes a client certificate's common name (each host's, from the internal CA) as the
    # user on its gRPC port: no host may be named as one of etcd's users.
    clashes = [h for h in topo.stack_hosts if h == "root" or h.startswith(ETCD_USER_PREFIX)]
    if clashes:
        raise StackError(
            f"the host name(s) {', '.join(clashes)} would be etcd users (root, {ETCD_USER_PREFIX}*): etcd takes "
            "a client certificate's common name as its user, so rename the host(s) in the inventory"
        )
    users = {}
    for db in topo.db_hosts:
        cluster = str(settings.get(db, *HA_SETTINGS["cluster"]) or "")
        if not cluster or "/" in cluster:
            raise StackError(f"mysql_replication_ha_cluster of {db} must be a name without '/', is {cluster!r}")
        users[db] = {"name": f"{ETCD_USER_PREFIX}ha-{db}", "prefixes": [f"/webinfra/{cluster}/"]}
    return users


def build(host, inputs, groups, hostvars, role_defaults, partial=False):
    """The stack model as seen from `host`.

    inputs: the webinfra_* inputs (missing ones take DEFAULTS).
    groups: inventory group name -> host names.
    hostvars: host name -> mapping of its variables (inventory, facts).
    role_defaults: role name -> its defaults/main.yml as a dict.
    partial: a host whose address is unknown (unreachable, no webinfra_private_address) is listed
      in `unaddressed` with the address "" instead of refusing the model: for the playbooks
      that only read the model while a host may be down (failover, health), never to configure.
    """
    cfg = _config(inputs)
    topo = _topology(cfg, groups)
    addresses, unaddressed = _addresses(cfg, topo, hostvars, partial)
    settings = Settings(hostvars, role_defaults)
    port = settings.port

    backend_tls = _bool(cfg["webinfra_backend_tls"], "webinfra_backend_tls")
    backend_port = cfg["webinfra_backend_port"]
    backend_port = (443 if backend_tls else 80) if not backend_port or int(backend_port) == 0 else backend_port
    backend_port = _port(backend_port, "webinfra_backend_port")
    vip = str(cfg["webinfra_vip"] or "").strip()
    if vip:
        check_address("the balancers", vip, "webinfra_vip")
    writer, writer_address, writer_port = _writer(cfg, topo, addresses, settings)
    _failover_timing(topo, settings, writer)
    networks = _admin_networks(cfg)
    acme = _acme(cfg, topo, addresses, settings)
    rules = _firewall_rules(host, groups, topo, addresses, settings, networks, writer, acme)
    app_env = _app_env(host, cfg, topo, addresses, settings, hostvars, writer_address, writer_port)
    packages = cfg["webinfra_app_system_packages"] or []
    if isinstance(packages, (str, bytes, dict)):
        raise StackError("webinfra_app_system_packages must be a list of Debian package names")

    primary = topo.primary
    semisync = settings.get(primary, *DB_SETTINGS["semisync"]) if primary else False
    semisync = _bool(True if semisync is None else semisync, "mysql_replication_semisync")
    # The servers' TLS (mysql_replication_tls): the application then connects over TLS (its
    # accounts require it); a web server that hosts a replica reads through the unix socket,
    # with a reader account for localhost that needs no TLS.
    db_tls = settings.get(primary, *DB_SETTINGS["tls"]) if primary else False
    db_tls = _bool(True if db_tls is None else db_tls, "mysql_replication_tls")
    tiers, play_groups = _tiers_and_play_groups(host, topo)
    return {
        "play_groups": play_groups,
        # The ports this host serves, as its inventory or the owning role's default sets them.
        "ports": {key: port(key, host) for key in PORTS},
        "groups": {
            "db_primary": topo.primary_group,
            "db_replicas": topo.replica_group,
            "monitoring": topo.monitoring_group,
            "etcd": topo.etcd_group,
            "backups": topo.backup_group,
        },
        "hosts": {
            "stack": topo.stack_hosts,
            "loadbalancers": topo.loadbalancers,
            "webservers": topo.webservers,
            "db_primary": primary,
            "db_replicas": topo.replicas,
            "db": topo.db_hosts,
            "monitoring": topo.monitors if topo.monitoring else [],
            "etcd": topo.etcd_hosts,
            "backups": topo.backup_hosts,
        },
        "addresses": addresses,
        # Hosts whose address was unknown (only with partial: their address is "").
        "unaddressed": unaddressed,
        "tiers": tiers,
        "tls_purposes": _tls_purposes(host, topo, backend_tls, db_tls),
        "backend": {"tls": backend_tls, "port": backend_port},
        "vip": vip,
        # Where clients reach the site inside the stack: the virtual IP, else the first balancer.
        "site_address": vip or (addresses[topo.loadbalancers[0]] if topo.loadbalancers else ""),
        # The lab (webinfra_lab): every role's lab-only relaxations of its checks follow it.
        "lab": _bool(cfg["webinfra_lab"], "webinfra_lab"),
        "monitoring": topo.monitoring,
        "admin_networks": networks[0],
        "monitoring_ui_networks": networks[1],
        "db": {
            "groups": topo.db_groups,
            "port": port("db", primary or None),
            "agent_port": port("db_agent", primary or None),
            "semisync": semisync and len(topo.db_hosts) > 1,
            "tls": db_tls,
            "socket_reader": any(h in topo.replicas for h in topo.webservers),
        },
        "db_writer": {"enabled": writer, "address": writer_address, "port": writer_port},
        # The database hosts behind the writer endpoint (name, address, port); empty without it.
        "db_servers": _endpoints(topo.db_hosts, "db", addresses, settings) if writer else [],
        # Prometheus' scrape targets by job (node, haproxy, nginx, mysqld, ha_agent), each a list
        # of name, address and port; empty on hosts that are no monitoring host.
        "monitoring_targets": _monitoring_targets(host, topo, addresses, settings),
        # The database HA agents' etcd endpoints (empty: no automatic failover).
        "etcd": {
            "enabled": bool(topo.etcd_hosts),
            "endpoints": [f"https://{addresses[h]}:{port('etcd_client', h)}" for h in topo.etcd_hosts],
            # Database host -> its HA agent's etcd user {name, prefixes} (role-based access control).
            "users": _etcd_users(topo, settings),
        },
        # Backups (empty hosts: none): the repositories and the port of their agents.
        "backup": {"enabled": bool(topo.backup_hosts), "group": topo.backup_group, "hosts": topo.backup_hosts},
        "firewall_rules": rules,
        # ACME certificates for the site (issuer: the balancer that asks; challenge: where its lego
        # answers HTTP-01, for every balancer's HAProxy, also as its address and port for lego).
        "acme": acme,
        # HTTPS on the exporters and HAProxy's metrics endpoint, and Prometheus scraping them so.
        "exporters": {"tls": _bool(cfg["webinfra_exporters_tls"], "webinfra_exporters_tls")},
        "app": {"env": app_env, "packages": _unique(APP_PACKAGES + [str(p) for p in packages])},
    }
