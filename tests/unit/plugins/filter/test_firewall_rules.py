"""The firewall's final rules, decided in Python: what the template prints for each tier."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.firewall_rules import accept, firewall_rules

GROUPS = {
    "loadbalancers": ["lb-01", "lb-02"],
    "webservers": ["web-01", "web-02"],
    "db_primary": ["web-01"],
    "db_replicas": ["web-02", "db-03"],
    "monitoring": ["lb-01"],
}
ADDRESSES = {"lb-01": "10.0.0.2", "lb-02": "10.0.0.3", "web-01": "10.0.0.4", "web-02": "10.0.0.5", "db-03": "10.0.0.6"}
SETTINGS = {
    "admin_networks": ["192.0.2.0/24", "2001:db8::/64"],
    "admin_ports": [8404],
    "ssh_port": 22,
    "loadbalancer_group": "loadbalancers",
    "webserver_group": "webservers",
    "database_groups": ["db_primary", "db_replicas"],
    "public_ports": [80, 443],
    "backend_port": 443,
    "database_port": 3306,
    "vrrp": True,
    "stack_rules": [
        {"port": 9100, "from": ["monitoring"], "comment": "node-exporter"},
        {"port": 9999, "from": [], "comment": "never printed: no sources"},
    ],
    "rules": [{"port": 8080, "proto": "udp"}, {"port": 7000, "from": ["198.51.100.7", "webservers"]}],
}


def rules(host, **changes):
    return firewall_rules(host, GROUPS, ADDRESSES, dict(SETTINGS, **changes))


def test_accept_prints_single_ports_sets_and_both_address_families():
    assert accept("tcp", [443], [], "public") == ['tcp dport 443 accept comment "public"']
    assert accept("tcp", [22, 8404], ["10.0.0.0/8", "2001:db8::1"], "admin") == [
        'ip saddr { 10.0.0.0/8 } tcp dport { 22, 8404 } accept comment "admin"',
        'ip6 saddr { 2001:db8::1 } tcp dport { 22, 8404 } accept comment "admin"',
    ]


def test_a_load_balancer_takes_the_site_from_anywhere_and_vrrp_from_its_peer():
    out = rules("lb-01")
    assert out[0]["note"].startswith("SSH and admin") and len(out[0]["lines"]) == 2
    assert out[1]["lines"] == [
        'tcp dport { 80, 443 } accept comment "public"',
        'ip saddr { 10.0.0.3 } ip protocol vrrp accept comment "vrrp"',
    ]
    # Its stack rule (the node exporter from the monitoring host, itself) and the inventory's rules.
    assert out[2]["lines"] == ['ip saddr { 10.0.0.2 } tcp dport 9100 accept comment "node-exporter"']
    assert out[3]["lines"] == ['udp dport 8080 accept comment "rule 1"']
    assert out[4]["lines"] == ['ip saddr { 198.51.100.7, 10.0.0.4, 10.0.0.5 } tcp dport 7000 accept comment "rule 2"']
    assert len(out) == 5
    assert "vrrp" not in rules("lb-01", vrrp=False)[1]["lines"][-1]


def test_a_web_server_with_a_database_takes_the_backend_and_the_database_ports():
    out = {rule["lines"][0].split('comment "')[1].rstrip('"'): rule["lines"] for rule in rules("web-01")}
    assert out["backend"] == ['ip saddr { 10.0.0.2, 10.0.0.3 } tcp dport 443 accept comment "backend"']
    # Web servers, then the other database hosts; never itself.
    assert out["database"] == ['ip saddr { 10.0.0.5, 10.0.0.6 } tcp dport 3306 accept comment "database"']
    assert "public" not in out


def test_no_admin_networks_means_no_admin_rule_and_a_host_without_address_is_named():
    assert not any(r["note"].startswith("SSH") for r in rules("db-03", admin_networks=[]))
    addresses = {h: a for h, a in ADDRESSES.items() if h != "web-02"}
    with pytest.raises(AnsibleFilterError, match="no address for web-02 in firewall_addresses"):
        firewall_rules("web-01", GROUPS, addresses, SETTINGS)
