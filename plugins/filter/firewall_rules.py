# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter firewall_rules: a host's final nftables accept rules, decided in Python (the firewall
role's template only prints them)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_rules
short_description: The final nftables accept rules of one host of the stack
version_added: 0.10.0
author: webinfra maintainers (@webinfra)
description:
  - From the firewall role's settings, the inventory's groups and the hosts' private addresses,
    the accept rules of the host given, in order, each as the nftables lines to print and an
    optional comment line. Sources that name an inventory group become its hosts' private
    addresses; others are addresses or CIDR networks (IPv6 ones get C(ip6 saddr) rules).
  - In order - SSH and the admin ports from the admin networks; on a load balancer the public
    ports from anywhere and VRRP from the other balancers; on a web server the backend port from
    the load balancers; on a database host the database port from the web servers and the other
    database hosts; then the stack's rules (C(firewall_stack_rules), those with sources) and the
    inventory's own (C(firewall_rules); without sources - from anywhere).
options:
  _input:
    description: The inventory name of the host.
    type: str
    required: true
  groups:
    description: The inventory's groups (C(groups)).
    type: dict
    required: true
  addresses:
    description:
      - Host name to private address (the firewall role's C(firewall_addresses), the stack model's
        C(webinfra_stack.addresses) in site.yml); every host a rule names must be in it.
    type: dict
    required: true
  settings:
    description:
      - C(admin_networks), C(admin_ports), C(ssh_port), C(loadbalancer_group), C(webserver_group),
        C(database_groups), C(public_ports), C(backend_port), C(database_port), C(vrrp),
        C(stack_rules) and C(rules), as the firewall role's variables of the same names
        (C(firewall_*)) give them.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: This host's rules
  ansible.builtin.debug:
    msg: "{{ inventory_hostname | webinfra.distributed.firewall_rules(groups, firewall_addresses, __settings) }}"
"""

RETURN = r"""
_value:
  description: One entry per rule - C(note) (a comment line, or empty) and C(lines) (the nftables lines).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError


def _address(addresses, host):
    address = addresses.get(host)
    if not address:
        raise AnsibleFilterError(
            f"firewall_rules: no address for {host} in firewall_addresses: set webinfra_private_address for it "
            "or gather its facts"
        )
    return str(address)


def _members(groups, names):
    out = []
    for name in names:
        for host in groups.get(name) or []:
            if host not in out:
                out.append(host)
    return out


def _sources(entries, groups, addresses):
    """Group names become their hosts' addresses; anything else is kept (an address or network)."""
    out = []
    for entry in entries or []:
        found = [_address(addresses, h) for h in groups.get(entry) or []] if entry in groups else [str(entry)]
        out.extend(a for a in found if a not in out)
    return out


def accept(proto, ports, sources, comment):
    """The nftables lines accepting `ports` from `sources` (every address when empty)."""
    ports = [str(p) for p in ports]
    spec = ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"
    tail = f'{proto} dport {spec} accept comment "{comment}"'
    if not sources:
        return [tail]
    v4 = [s for s in sources if ":" not in s]
    v6 = [s for s in sources if ":" in s]
    lines = []
    if v4:
        lines.append("ip saddr { " + ", ".join(v4) + " } " + tail)
    if v6:
        lines.append("ip6 saddr { " + ", ".join(v6) + " } " + tail)
    return lines


def firewall_rules(host, groups, addresses, settings):
    s = settings
    lbs = list(groups.get(s["loadbalancer_group"]) or [])
    webs = list(groups.get(s["webserver_group"]) or [])
    dbs = _members(groups, s["database_groups"])
    out = []
    if s["admin_networks"]:
        ports = [s["ssh_port"], *s["admin_ports"]]
        out.append(
            {
                "note": "SSH and admin endpoints: admin networks only.",
                "lines": accept("tcp", ports, [str(n) for n in s["admin_networks"]], "admin"),
            }
        )
    if host in lbs:
        lines = accept("tcp", s["public_ports"], [], "public")
        peers = [_address(addresses, h) for h in lbs if h != host]
        if s["vrrp"] and peers:
            lines.append("ip saddr { " + ", ".join(peers) + ' } ip protocol vrrp accept comment "vrrp"')
        out.append({"note": "Load balancer: the site, from anywhere.", "lines": lines})
    if host in webs and lbs:
        sources = [_address(addresses, h) for h in lbs]
        out.append(
            {
                "note": "Web server: the backend port, from the load balancers only.",
                "lines": accept("tcp", [s["backend_port"]], sources, "backend"),
            }
        )
    if host in dbs:
        peers = [h for h in _members({"w": webs, "d": dbs}, ["w", "d"]) if h != host]
        out.append(
            {
                "note": "Database: from the web servers and the other database hosts (replication, switchover).",
                "lines": accept("tcp", [s["database_port"]], [_address(addresses, h) for h in peers], "database"),
            }
        )
    for index, rule in enumerate([r for r in s["stack_rules"] if r.get("from")], start=1):
        sources = _sources(rule["from"], groups, addresses)
        comment = rule.get("comment") or f"stack rule {index}"
        out.append({"note": "", "lines": accept(rule.get("proto") or "tcp", [rule["port"]], sources, comment)})
    for index, rule in enumerate(s["rules"], start=1):
        sources = _sources(rule.get("from") or [], groups, addresses)
        comment = rule.get("comment") or f"rule {index}"
        out.append({"note": "", "lines": accept(rule.get("proto") or "tcp", [rule["port"]], sources, comment)})
    return out


class FilterModule:
    def filters(self):
        return {"firewall_rules": firewall_rules}
