# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything an inventory still lacks before a first run, found at once (unit-tested).

Each role's preflight refuses its own missing secret or setting, one role and one host at a
time; an operator filling in a new inventory would meet them one run after another. The stack
role calls `problems` first, on the controller, for the whole inventory: every secret that is
unset, refers to an undefined (vault) variable, or is weak outside the lab, and the settings a
production run needs (admin networks, server names, the site's certificate), each named with
the hosts it concerns, in one refusal. `os_problem` is the platform gate: Debian 12 and 13 only.
"""

from __future__ import annotations

from ansible_collections.webinfra.distributed.plugins.plugin_utils.secrets import MIN_LENGTH, weak_secrets

# Releases the roles are written and tested for (their packages: MariaDB 10.11 / 11.8,
# HAProxy 2.6 / 3.0, etcd, the Prometheus exporters, as Debian ships them).
SUPPORTED_OS = {"Debian": ("12", "13")}

VAULT_HINT = (
    "Set them (secrets in an ansible-vault file: inventories/production.example/group_vars/all/"
    "vault.yml.example lists every one), then run again."
)


def os_problem(host: str, facts: dict) -> str:
    """Why `host` cannot run the stack ('' when it can), from its gathered facts."""
    distribution = str(facts.get("distribution") or "")
    if not distribution:
        return ""  # no facts gathered for it (partial runs): the roles' own steps decide
    major = str(facts.get("distribution_major_version") or "")
    version = str(facts.get("distribution_version") or major)
    releases = SUPPORTED_OS.get(distribution, ())
    if major in releases:
        return ""
    supported = ", ".join(f"{name} {' and '.join(majors)}" for name, majors in SUPPORTED_OS.items())
    return (
        f"{host} runs {distribution} {version}; webinfra.distributed supports {supported} only "
        "(the roles install and configure those releases' packages of MariaDB, HAProxy, etcd and "
        "the exporters, and are tested on them): use a supported release for this host"
    )


class _Vars:
    """One host's variables, each read once; a variable that cannot be templated (an undefined
    vault variable) is remembered with the reason instead of raising."""

    def __init__(self, hostvars, host):
        self._vars = hostvars.get(host, {}) if hasattr(hostvars, "get") else {}
        self.broken = {}

    def get(self, name, default=None):
        try:
            if name not in self._vars:
                return default
            return self._vars[name]
        except Exception as exc:  # noqa: BLE001 - any templating error: report it, do not stop
            self.broken[name] = str(exc).splitlines()[0][:200]
            return None


def _truthy(value, default):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "on", "1")


def _members(groups, name):
    return list((groups or {}).get(name, []) or [])


def _required(topology, variables):
    """(variable, hosts that need it, is a secret) of every input a run needs, per the topology."""
    db, lbs, monitors, backups = topology["db"], topology["loadbalancers"], topology["monitors"], topology["backups"]
    out = [
        ("mysql_replication_password", db, True),
        ("mysql_replication_app_writer_password", db, True),
        ("mysql_replication_app_reader_password", db, True),
    ]
    if topology["monitoring"]:
        out.append(("exporters_mysqld_password", db, True))
        out.append(("monitoring_web_password", monitors, True))
    archive = [h for h in db + backups if _truthy(variables[h].get("backup_binlog_archive"), True)] if backups else []
    out.append(("backup_binlog_password", archive, True))
    stats = [h for h in lbs if _truthy(variables[h].get("haproxy_stats_enabled"), True)]
    out.append(("haproxy_stats_password", stats, True))
    return out


def problems(inputs: dict, groups: dict, hostvars, topology: dict, lab: bool) -> list[str]:
    """Every missing or weak input of the inventory, one line each (empty when ready).

    topology: the host lists of the stack ('db', 'loadbalancers', 'monitors', 'backups',
    'stack') and whether 'monitoring' is on, as the stack model computed them.
    """
    hosts = sorted(set(topology["stack"]))
    variables = {host: _Vars(hostvars, host) for host in hosts}
    found = []

    def hosts_text(names):
        names = sorted(names)
        return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"

    for name, needing, _secret in _required(topology, variables):
        unset, weak = [], []
        for host in needing:
            value = variables[host].get(name, "")
            if name in variables[host].broken:
                continue
            text = "" if value is None else str(value)
            if not text:
                unset.append(host)
            elif not lab and weak_secrets({name: text}):
                weak.append(host)
        if unset:
            found.append(f"{name} is not set (needed on {hosts_text(unset)})")
        if weak:
            found.append(
                f"{name} is a lab default or shorter than {MIN_LENGTH} characters (on {hosts_text(weak)}): "
                "outside the lab it must be a strong secret"
            )

    if not lab:
        if topology["stack"] and not list(inputs.get("webinfra_admin_networks") or []):
            found.append(
                "webinfra_admin_networks is empty: list the networks you administer from (SSH and the admin "
                "pages accept only them; empty would lock SSH out)"
            )
        if topology["loadbalancers"] and not _truthy(inputs.get("webinfra_acme"), False):
            unnamed = [
                h
                for h in topology["loadbalancers"]
                if not list(variables[h].get("haproxy_server_names") or variables[h].get("webinfra_server_names") or [])
            ]
            if unnamed:
                found.append(
                    f"webinfra_server_names is empty (on {hosts_text(unnamed)}): the names clients use for the site, "
                    "which its certificate must cover"
                )
            for name in ("haproxy_tls_certificate", "haproxy_tls_private_key"):
                missing = [
                    h
                    for h in topology["loadbalancers"]
                    if not str(variables[h].get(name, "") or "") and name not in variables[h].broken
                ]
                if missing:
                    found.append(
                        f"{name} is not set (needed on {hosts_text(missing)}): the site's certificate and key "
                        "(PEM), or ACME with webinfra_acme: true (the internal CA's certificate serves the site only "
                        "in the lab: haproxy_tls_internal_ca)"
                    )

    broken = {}
    for host in hosts:
        for name, reason in variables[host].broken.items():
            broken.setdefault((name, reason), []).append(host)
    for (name, reason), where in sorted(broken.items()):
        found.append(f"{name} cannot be read on {hosts_text(where)}: {reason}")
    return found


def refusal(found: list[str]) -> str:
    """The one message that lists them all."""
    lines = "\n".join(f"  - {line}" for line in found)
    return f"the inventory is not ready for a run; {len(found)} input(s) to set:\n{lines}\n{VAULT_HINT}"
