# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networks and certificate names: shared by the collection's filters (standard library only)."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def _as_list(value, name):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise AnsibleFilterError(f"{name}: expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def invalid_networks(networks):
    """Entries of a list that are not an IPv4/IPv6 address or network in CIDR notation."""
    bad = []
    for entry in _as_list(networks, "invalid_networks"):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(entry)
    return bad


def is_ip(value):
    """True when the value is an IPv4 or IPv6 address (not a network, not a name)."""
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def subject_alt_names(names):
    """Turn host names and addresses into subjectAltName entries (DNS:... or IP:...), deduplicated."""
    out = []
    for name in _as_list(names, "subject_alt_names"):
        if not name:
            continue
        entry = f"IP:{ipaddress.ip_address(name)}" if is_ip(name) else f"DNS:{name.lower()}"
        if entry not in out:
            out.append(entry)
    return out


def _dns_matches(pattern, name):
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    # A wildcard covers exactly one left-most label (RFC 6125): *.example.com covers
    # www.example.com, not example.com nor a.b.example.com.
    if pattern.startswith("*.") and "." in name:
        return name.split(".", 1)[1] == pattern[2:]
    return False


def uncovered_names(subject_alt_name, names):
    """Names (host names or addresses) that no entry of a certificate's subjectAltName covers.

    subject_alt_name: the list x509_certificate_info returns, e.g. ["DNS:www.example.com", "IP:192.0.2.1"].
    """
    dns = []
    ips = []
    for entry in _as_list(subject_alt_name or [], "uncovered_names"):
        kind, _sep, value = entry.partition(":")
        if kind.strip().upper() == "DNS":
            dns.append(value.strip())
        elif kind.strip().upper() in ("IP", "IP ADDRESS"):
            try:
                ips.append(ipaddress.ip_address(value.strip()))
            except ValueError:
                continue
    missing = []
    for name in _as_list(names, "uncovered_names"):
        if is_ip(name):
            covered = ipaddress.ip_address(name) in ips
        else:
            covered = any(_dns_matches(pattern, name) for pattern in dns)
        if not covered:
            missing.append(name)
    return missing


def in_network(address, network):
    """True when the address lies in the network (CIDR); False for anything not parseable."""
    try:
        return ipaddress.ip_address(str(address)) in ipaddress.ip_network(str(network), strict=False)
    except ValueError:
        return False


def known_address(hostvars_entry):
    """The private address of a host (its hostvars entry), or None while it is not known.

    `webinfra_private_address` when set, else the IPv4 address of the default route from
    gathered facts (`ansible_facts` or the injected `ansible_default_ipv4`).
    """
    explicit = hostvars_entry.get("webinfra_private_address")
    if explicit:
        return str(explicit)
    facts = hostvars_entry.get("ansible_facts") or {}
    address = (facts.get("default_ipv4") or {}).get("address")
    if not address:
        address = (hostvars_entry.get("ansible_default_ipv4") or {}).get("address")
    return str(address) if address else None


def missing_addresses(group_names, groups, hostvars, addresses=None):
    """Hosts of the named groups (in order, no repeats) whose private address is not known yet.

    With `addresses` (host name -> address, a role's `<role>_addresses`): the hosts not in it.
    """
    if isinstance(group_names, str):
        group_names = [group_names]
    missing = []
    for group in _as_list(group_names, "missing_addresses"):
        for host in groups.get(group) or []:
            if host in missing:
                continue
            if (host not in addresses) if addresses is not None else known_address(hostvars[host]) is None:
                missing.append(host)
    return missing


def address_map(hosts, hostvars):
    """Host name -> private address for the hosts (in order) whose address is known.

    A host whose address is unknown is left out: a role's preflight then names the host and
    the role's `<role>_addresses` parameter instead of failing deep inside a template.
    """
    if isinstance(hosts, str):
        hosts = [hosts]
    out = {}
    for host in _as_list(hosts, "address_map"):
        if host in out or host not in hostvars:
            continue
        address = known_address(hostvars[host])
        if address is not None:
            out[host] = address
    return out
