# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter health_report: the stack's health judged from what the health playbook gathered."""

from __future__ import annotations

DOCUMENTATION = r"""
name: health_report
short_description: Judge the stack's health from the results the health playbook registered
version_added: 0.6.0
author: webinfra maintainers (@webinfra)
description:
  - Reads, for every host of the inventory, the results that the playbook C(webinfra.distributed.health)
    registers (C(__health_lb) from M(webinfra.distributed.haproxy_info), C(__health_app) and
    C(__health_monitoring) from M(webinfra.distributed.health_check), C(__health_ha), the HA
    agent's C(/status) read by M(ansible.builtin.uri), C(__health_db) from
    M(webinfra.distributed.replication_info)) and the C(mounts) and C(all_ipv4_addresses) facts,
    and returns one report.
  - With the HA agents, every agent must see the same leader (the reference GTID position is the
    leader's) and none may hold errant transactions; a paused cluster is shown as PAUSED.
  - A host without gathered facts is reported unreachable. Every HAProxy server must be UP, except
    in the writer endpoint's backend, which is healthy with exactly one server UP (the writable
    primary; the read-only servers are DOWN there by design). A replica must run both threads
    with a lag of at most O(max_lag) seconds; its GTID gap to the primary is shown per
    replication domain. With a virtual IP, exactly one balancer must hold it.
options:
  _input:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  groups:
    description: The C(groups) magic variable.
    type: dict
    required: true
  primary_group:
    description: The inventory group of the primary database.
    type: str
    default: db_primary
  writer_backend:
    description: Name of the HAProxy writer endpoint (C(haproxy_db_writer_name)).
    type: str
    default: db_writer
  vip:
    description: The virtual IP of the balancer pair; empty when there is none.
    type: str
    default: ""
  max_lag:
    description: Largest acceptable replica lag, in seconds.
    type: int
    default: 5
  max_disk_percent:
    description: A filesystem fuller than this (percent used) is a problem.
    type: float
    default: 90
"""

EXAMPLES = r"""
- name: Build the report
  ansible.builtin.set_fact:
    report: "{{ hostvars | webinfra.distributed.health_report(groups, vip=webinfra_vip | default('')) }}"
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    healthy:
      description: True when no problem was found.
      type: bool
    problems:
      description: One sentence per problem, naming the host.
      type: list
      elements: str
    checks:
      description: Rows of host, check, C(ok) or C(FAIL), detail.
      type: list
      elements: list
    table:
      description: The rows as aligned text lines.
      type: list
      elements: str
    vip_holder:
      description: The balancer holding the virtual IP (null without one, or when not exactly one holds it).
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import GtidError
from ansible_collections.webinfra.distributed.plugins.module_utils.health_report import build_report, disk_usage

RESULTS = {
    "lb": "__health_lb",
    "app": "__health_app",
    "monitoring": "__health_monitoring",
    "db": "__health_db",
    "ha": "__health_ha",
}


def _plain(value):
    """A registered result as plain dicts and lists (hostvars hands out lazy mappings)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def health_report(
    hostvars,
    groups,
    primary_group="db_primary",
    writer_backend="db_writer",
    vip="",
    max_lag=5,
    max_disk_percent=90,
):
    hosts = {}
    for name in groups.get("all", []):
        hv = hostvars[name]
        facts = hv.get("ansible_facts") or {}
        entry = {"reached": "mounts" in facts, "model": "webinfra_stack" in hv}
        if entry["reached"]:
            entry["disk"] = disk_usage(_plain(facts["mounts"]))
        for key, var in RESULTS.items():
            if var in hv:
                entry[key] = _plain(hv[var])
        entry["vip_held"] = bool(vip) and vip in (facts.get("all_ipv4_addresses") or [])
        hosts[name] = entry
    primaries = list(groups.get(primary_group) or [])
    try:
        return build_report(
            hosts,
            primary=primaries[0] if primaries else None,
            writer_backends=(writer_backend,),
            vip=vip or "",
            loadbalancers=list(groups.get("loadbalancers") or []),
            max_lag=int(max_lag),
            max_disk_percent=float(max_disk_percent),
        )
    except (GtidError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("health_report: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"health_report": health_report}
