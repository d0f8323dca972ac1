from pathlib import Path

import pytest
import yaml

from ansible_collections.webinfra.distributed.plugins.action.stack_facts import role_defaults as action_role_defaults
from ansible_collections.webinfra.distributed.plugins.plugin_utils.stack import (
    DB_SETTINGS,
    DEFAULTS,
    PORTS,
    StackError,
    build,
)

ROOT = Path(__file__).resolve().parents[4]


def role_defaults():
    out = {}
    for role, _var in list(PORTS.values()) + list(DB_SETTINGS.values()):
        out.setdefault(role, yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()))
    return out


SECRETS = {
    "mysql_replication_app_writer_password": "w-secret",
    "mysql_replication_app_reader_password": "r-secret",
}


def seed_inventory(**extra):
    """The seed design: lb-01 (also monitoring), web-01 (primary), web-02 (replica)."""
    groups = {
        "all": ["lb-01", "web-01", "web-02", "client"],
        "loadbalancers": ["lb-01"],
        "webservers": ["web-01", "web-02"],
        "db_primary": ["web-01"],
        "db_replicas": ["web-02"],
        "monitoring": ["lb-01"],
        "clients": ["client"],
    }
    hostvars = {
        "lb-01": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.2"}}},
        "web-01": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.3"}}, **SECRETS},
        "web-02": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.4"}}, **SECRETS},
        "client": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.9"}}},
    }
    for host, values in extra.items():
        hostvars[host].update(values)
    return groups, hostvars


def model(host, inputs=None, groups=None, hostvars=None):
    """The model as the action computes it (with the roles' defaults it reads)."""
    if groups is None:
        groups, hostvars = seed_inventory()
    return build(host, inputs or {}, groups, hostvars, action_role_defaults())


def test_role_defaults_are_the_home_of_the_shared_ports():
    defaults = role_defaults()
    for key, (role, var) in PORTS.items():
        assert isinstance(defaults[role][var], int), f"{role}: {var} must be a literal port ({key})"
    # The action reads these files without templating: the database settings are literals too.
    for role, var in DB_SETTINGS.values():
        assert "{{" not in str(defaults[role].get(var, "")), f"{role}: {var} must be a literal"


# The stack role's options that are no input of the model: how the model is computed, and where
# the controller keeps the passwords it generates.
ROLE_OPTIONS = {
    "webinfra_stack_partial": False,
    "webinfra_secrets_dir": "{{ pki_dir | default((inventory_dir | default(playbook_dir)) ~ '/.pki') }}/etcd",
}


def test_stack_role_defaults_and_argument_spec_agree_with_the_model():
    defaults = yaml.safe_load((ROOT / "roles/stack/defaults/main.yml").read_text())
    assert defaults == {**DEFAULTS, **ROLE_OPTIONS}
    spec = yaml.safe_load((ROOT / "roles/stack/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert set(options) == set(DEFAULTS) | set(ROLE_OPTIONS)
    for name, option in options.items():
        assert option.get("default") == {**DEFAULTS, **ROLE_OPTIONS}[name], name
        assert option.get("description"), name


def test_seed_design_model():
    lb, primary, replica, client = model("lb-01"), model("web-01"), model("web-02"), model("client")
    assert lb["hosts"]["stack"] == ["lb-01", "web-01", "web-02"]
    assert lb["tiers"] == ["loadbalancers", "monitoring"]
    assert primary["tiers"] == ["webservers", "db_primary"]
    assert client["tiers"] == [] and client["play_groups"] == []
    assert lb["play_groups"] == ["webinfra_stack", "webinfra_exporters", "webinfra_monitoring"]
    assert primary["play_groups"] == ["webinfra_stack", "webinfra_exporters", "webinfra_db"]
    # A key pair per purpose: only the services each host runs.
    assert lb["tls_purposes"] == ["haproxy", "monitoring", "exporters"]
    assert primary["tls_purposes"] == ["mariadb", "nginx", "exporters"]
    assert client["tls_purposes"] == []
    assert lb["backend"] == {"tls": True, "port": 443}
    assert lb["db_writer"] == {"enabled": False, "address": "10.0.0.3", "port": 3306}
    assert lb["db"] == {
        "groups": ["db_primary", "db_replicas"],
        "port": 3306,
        "agent_port": 3308,
        "semisync": True,
        "tls": True,
        "socket_reader": True,
    }
    # The primary's web server reads from the first replica; the replica's reads its own socket.
    assert primary["app"]["env"] == {
        "DB_NAME": "webapp",
        "DB_WRITE_HOST": "10.0.0.3",
        "DB_WRITE_PORT": "3306",
        "DB_WRITE_USER": "app_writer",
        "DB_WRITE_PASSWORD": "w-secret",
        "DB_READ_USER": "app_reader",
        "DB_READ_PASSWORD": "r-secret",
        "DB_READ_HOST": "10.0.0.4",
        "DB_READ_PORT": "3306",
    }
    assert replica["app"]["env"]["DB_READ_SOCKET"] == "/run/mysqld/mysqld.sock"
    assert "DB_READ_HOST" not in replica["app"]["env"]
    assert lb["app"] == {"env": {}, "packages": ["python3-pymysql"]}


def rules(m):
    return {r["comment"]: (r["port"], r["from"]) for r in m["firewall_rules"]}


def test_firewall_rules_per_tier():
    assert rules(model("lb-01", {"webinfra_admin_networks": ["192.0.2.0/24"]})) == {
        "haproxy-stats": (8404, ["192.0.2.0/24"]),
        "node-exporter": (9100, ["monitoring"]),
        "haproxy-metrics": (8405, ["monitoring"]),
        "prometheus": (9090, ["192.0.2.0/24"]),
        "alertmanager": (9093, ["192.0.2.0/24"]),
    }
    assert rules(model("web-01")) == {
        "node-exporter": (9100, ["monitoring"]),
        "nginx-exporter": (9113, ["monitoring"]),
        "mysqld-exporter": (9104, ["monitoring"]),
    }
    assert model("client")["firewall_rules"] == []


def test_vip_turns_on_the_writer_endpoint():
    inputs = {"webinfra_vip": "10.0.0.100"}
    web = model("web-01", inputs)
    assert web["db_writer"] == {"enabled": True, "address": "10.0.0.100", "port": 3307}
    assert web["app"]["env"]["DB_WRITE_HOST"] == "10.0.0.100" and web["app"]["env"]["DB_WRITE_PORT"] == "3307"
    assert rules(web)["db-writer-endpoint"] == (3306, ["loadbalancers"])
    assert rules(model("lb-01", inputs))["db-writer-endpoint"] == (3307, ["webservers"])
    # Off on request; on without a VIP on request (then on the first balancer's address).
    assert not model("web-01", {**inputs, "webinfra_db_writer_endpoint": False})["db_writer"]["enabled"]
    on = model("web-01", {"webinfra_db_writer_endpoint": True})["db_writer"]
    assert on == {"enabled": True, "address": "10.0.0.2", "port": 3307}
    # Where the site is reached inside the stack: the VIP, else the first balancer.
    assert web["site_address"] == "10.0.0.100"
    assert model("web-01")["site_address"] == "10.0.0.2"


def test_ports_come_from_the_inventory_of_the_host_that_serves_them():
    groups, hostvars = seed_inventory(
        **{
            "lb-01": {"haproxy_db_writer_port": 4000, "haproxy_stats_port": 8500},
            "web-01": {"mysql_replication_port": 3400},
        }
    )
    web = model("web-02", {"webinfra_vip": "10.0.0.100"}, groups, hostvars)
    assert web["app"]["env"]["DB_WRITE_PORT"] == "4000"
    assert rules(model("lb-01", {}, groups, hostvars))["haproxy-stats"][0] == 8500
    assert model("web-02", {}, groups, hostvars)["app"]["env"]["DB_WRITE_PORT"] == "3400"


MOVED = {
    "exporters_node_port": 9101,
    "exporters_nginx_port": 9114,
    "exporters_mysqld_port": 9105,
    "haproxy_metrics_port": 8406,
    "mysql_replication_port": 3316,
}


def test_a_moved_port_moves_the_firewall_the_scrape_and_the_backend_together():
    """Each cross-tier port set once in the inventory: the serving host's firewall opens it,
    Prometheus scrapes it and the writer endpoint's servers use it; no second default."""
    groups, hostvars = seed_inventory(**{h: dict(MOVED) for h in ("lb-01", "web-01", "web-02")})
    inputs = {"webinfra_vip": "10.0.0.100"}
    lb = model("lb-01", inputs, groups, hostvars)
    web = model("web-01", inputs, groups, hostvars)
    assert rules(lb)["node-exporter"][0] == 9101 and rules(lb)["haproxy-metrics"][0] == 8406
    assert rules(web)["nginx-exporter"][0] == 9114 and rules(web)["mysqld-exporter"][0] == 9105
    assert rules(web)["db-writer-endpoint"][0] == 3316
    targets = {job: {(t["name"], t["address"], t["port"]) for t in ts} for job, ts in lb["monitoring_targets"].items()}
    assert targets["node"] == {("lb-01", "10.0.0.2", 9101), ("web-01", "10.0.0.3", 9101), ("web-02", "10.0.0.4", 9101)}
    assert targets["haproxy"] == {("lb-01", "10.0.0.2", 8406)}
    assert targets["nginx"] == {("web-01", "10.0.0.3", 9114), ("web-02", "10.0.0.4", 9114)}
    assert targets["mysqld"] == {("web-01", "10.0.0.3", 9105), ("web-02", "10.0.0.4", 9105)}
    assert targets["ha_agent"] == set()  # no etcd: no HA agents
    # The application on the primary's web server reads from the replica at its moved port.
    assert (web["app"]["env"]["DB_READ_HOST"], web["app"]["env"]["DB_READ_PORT"]) == ("10.0.0.4", "3316")
    assert lb["db_servers"] == [
        {"name": "web-01", "address": "10.0.0.3", "port": 3316},
        {"name": "web-02", "address": "10.0.0.4", "port": 3316},
    ]
    # Only the monitoring hosts carry the targets; without a writer endpoint there are no servers.
    assert web["monitoring_targets"] == {} and model("lb-01", {}, groups, hostvars)["db_servers"] == []


def test_a_port_moved_on_one_host_only_is_scraped_there_only():
    groups, hostvars = seed_inventory(**{"web-02": {"exporters_node_port": 9200}})
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    lb = model("lb-01", {}, groups, hostvars)
    ports = {t["name"]: t["port"] for t in lb["monitoring_targets"]["node"]}
    assert ports == {"lb-01": 9100, "web-01": 9100, "web-02": 9200}
    assert [t["port"] for t in lb["monitoring_targets"]["ha_agent"]] == [3308, 3308]


def test_app_env_from_webinfra_app_env_then_nginx_app_env_in_the_inventory():
    groups, hostvars = seed_inventory(**{"web-01": {"nginx_app_env": {"APP_KEY": "k", "DB_NAME": "other"}}})
    inputs = {"webinfra_app_env": {"FEATURE": "on", "APP_KEY": "x"}}
    env = model("web-01", inputs, groups, hostvars)["app"]["env"]
    assert (env["FEATURE"], env["APP_KEY"], env["DB_NAME"]) == ("on", "k", "other")


def test_backend_without_tls_uses_port_80_and_explicit_ports_win():
    assert model("lb-01", {"webinfra_backend_tls": False})["backend"] == {"tls": False, "port": 80}
    assert model("lb-01", {"webinfra_backend_port": 8443})["backend"] == {"tls": True, "port": 8443}


def test_custom_database_groups_and_no_monitoring():
    groups, hostvars = seed_inventory()
    groups["pg"] = groups.pop("db_primary")
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    inputs = {"webinfra_db_primary_group": "pg", "webinfra_monitoring": False}
    lb = model("lb-01", inputs, groups, hostvars)
    assert lb["db"]["groups"] == ["pg", "db_replicas"] and lb["hosts"]["db_primary"] == "web-01"
    assert "monitoring" not in lb["tiers"] and "node-exporter" not in rules(lb)
    assert rules(model("web-01", inputs, groups, hostvars))["db-ha-agent"][1] == [
        "loadbalancers",
        "pg",
        "db_replicas",
    ]


def test_semisync_follows_mysql_replication_semisync():
    groups, hostvars = seed_inventory(**{"web-01": {"mysql_replication_semisync": False}})
    assert model("lb-01", {}, groups, hostvars)["db"]["semisync"] is False
    groups, hostvars = seed_inventory()
    groups["db_replicas"] = []
    assert model("lb-01", {}, groups, hostvars)["db"]["semisync"] is False


def test_database_tls_follows_mysql_replication_tls_and_socket_readers_the_topology():
    groups, hostvars = seed_inventory(**{"web-01": {"mysql_replication_tls": False}})
    assert model("lb-01", {}, groups, hostvars)["db"]["tls"] is False
    # Separate database hosts: no web server reads through a unix socket.
    groups, hostvars = seed_inventory()
    groups["all"] += ["db-01", "db-02"]
    groups["db_primary"], groups["db_replicas"] = ["db-01"], ["db-02"]
    hostvars["db-01"] = {"ansible_facts": {"default_ipv4": {"address": "10.0.0.5"}}, **SECRETS}
    hostvars["db-02"] = {"ansible_facts": {"default_ipv4": {"address": "10.0.0.6"}}, **SECRETS}
    db = model("web-01", {}, groups, hostvars)["db"]
    assert db["tls"] is True and db["socket_reader"] is False


@pytest.mark.parametrize(
    ("extra", "inputs", "message"),
    [
        (
            {"web-01": {"webinfra_private_address": "fd00::3"}},
            {},
            "webinfra_private_address of web-01 is fd00::3: IPv6",
        ),
        ({"web-01": {"webinfra_private_address": "web01.example"}}, {}, "webinfra_private_address of web-01 must be"),
        ({"web-02": {"webinfra_private_address": "10.0.0.3"}}, {}, "hosts share a private address"),
        (
            {"web-02": {"webinfra_private_address": "1.2.3.4"}},
            {},
            "private addresses of web-02 (1.2.3.4) are public",
        ),
        ({}, {"webinfra_vip": "fd00::100"}, "webinfra_vip of the balancers is fd00::100: IPv6"),
        ({}, {"webinfra_admin_networks": ["10.0.0.0/33"]}, "networks: not an address or CIDR network: 10.0.0.0/33"),
        ({}, {"webinfra_admin_networks": "10.0.0.0/8"}, "webinfra_admin_networks must be a list"),
        ({}, {"webinfra_admin_networks": ["0.0.0.0/0"]}, "webinfra_admin_networks holds 0.0.0.0/0: every address"),
        ({}, {"webinfra_admin_networks": ["192.0.2.0/24", "::/0"]}, "webinfra_admin_networks holds ::/0"),
        (
            {},
            {"webinfra_admin_networks": ["192.0.2.0/24"], "webinfra_monitoring_ui_networks": ["0.0.0.0/0"]},
            "webinfra_monitoring_ui_networks holds 0.0.0.0/0",
        ),
        ({}, {"webinfra_backend_port": 70000}, "webinfra_backend_port must be a port number"),
        ({}, {"webinfra_monitoring_group": "nobody"}, "'nobody' has no host (webinfra_monitoring_group)"),
        ({}, {"webinfra_app_env": ["A=1"]}, "webinfra_app_env must be a mapping"),
        ({}, {"webinfra_colour": "blue"}, "unknown stack inputs: webinfra_colour"),
        (
            {"web-01": {"mysql_replication_app_writer_password": ""}},
            {},
            "mysql_replication_app_writer_password is not set",
        ),
    ],
)
def test_bad_input_names_the_variable(extra, inputs, message):
    groups, hostvars = seed_inventory(**extra)
    with pytest.raises(StackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build("web-01", inputs, groups, hostvars, role_defaults())


def test_two_primaries_refused():
    groups, hostvars = seed_inventory()
    groups["db_primary"] = ["web-01", "web-02"]
    with pytest.raises(StackError, match="must hold one host"):
        model("lb-01", {}, groups, hostvars)


def test_unknown_address_is_refused():
    groups, hostvars = seed_inventory()
    hostvars["web-02"] = {}
    with pytest.raises(StackError, match="no address for web-02"):
        model("lb-01", {}, groups, hostvars)


def test_role_defaults_agree_with_the_stack_defaults():
    """A role applied on its own behaves as the stack does: TLS to the web servers on 443."""
    nginx = yaml.safe_load((ROOT / "roles/nginx_app/defaults/main.yml").read_text())
    haproxy = yaml.safe_load((ROOT / "roles/haproxy/defaults/main.yml").read_text())
    firewall = yaml.safe_load((ROOT / "roles/firewall/defaults/main.yml").read_text())
    assert nginx["nginx_app_tls"] is haproxy["haproxy_backend_tls"] is DEFAULTS["webinfra_backend_tls"] is True
    assert firewall["firewall_backend_port"] == 443
    assert "443 if" in nginx["nginx_app_port"] and "443 if" in haproxy["haproxy_backend_port"]
    assert firewall["firewall_database_port"] == role_defaults()["mysql_replication"]["mysql_replication_port"]


def test_etcd_group_turns_on_automatic_failover_and_the_writer_endpoint():
    groups, hostvars = seed_inventory()
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    lb, web = model("lb-01", groups=groups, hostvars=hostvars), model("web-01", groups=groups, hostvars=hostvars)
    assert lb["etcd"] == {
        "enabled": True,
        "endpoints": ["https://10.0.0.2:2379", "https://10.0.0.3:2379", "https://10.0.0.4:2379"],
        # Each database host's HA agent its own etcd user, read-write on its cluster's prefix only.
        "users": {
            "web-01": {"name": "webinfra-ha-web-01", "prefixes": ["/webinfra/webinfra/"]},
            "web-02": {"name": "webinfra-ha-web-02", "prefixes": ["/webinfra/webinfra/"]},
        },
    }
    assert "webinfra_etcd" in lb["play_groups"] and "etcd" in lb["tiers"]
    assert lb["tls_purposes"] == ["etcd", "etcd-client", "haproxy", "monitoring", "exporters"]
    assert web["tls_purposes"] == ["mariadb", "etcd", "etcd-client", "nginx", "exporters"]
    # No virtual IP, yet the writes go through the balancer (they follow the leader).
    assert web["db_writer"] == {"enabled": True, "address": "10.0.0.2", "port": 3307}
    assert web["app"]["env"]["DB_WRITE_HOST"] == "10.0.0.2"
    rules = {r["comment"]: r["from"] for r in lb["firewall_rules"]}
    assert rules["etcd-client"] == ["etcd", "db_primary", "db_replicas"]
    assert rules["etcd-peer"] == ["etcd"]
    agent = {r["comment"]: r["from"] for r in web["firewall_rules"]}["db-ha-agent"]
    assert agent == ["loadbalancers", "db_primary", "db_replicas", "monitoring"]
    # Without the group: no etcd, the writer endpoint only with a virtual IP.
    plain = model("web-01")
    assert plain["etcd"] == {"enabled": False, "endpoints": [], "users": {}}
    assert not plain["db_writer"]["enabled"]


def test_backup_hosts_join_the_stack_with_their_firewall_openings():
    groups, hostvars = seed_inventory()
    groups = dict(groups, backups=["bk-01"], all=[*groups["all"], "bk-01"])
    hostvars = dict(hostvars, **{"bk-01": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.7"}}}})
    bk, db, lb = (model(h, groups=groups, hostvars=hostvars) for h in ("bk-01", "web-01", "lb-01"))
    assert "bk-01" in bk["hosts"]["stack"] and bk["tiers"] == ["backups"]
    assert bk["backup"] == {"enabled": True, "group": "backups", "hosts": ["bk-01"]}
    assert "webinfra_backup" in bk["play_groups"] and "webinfra_backup" in db["play_groups"]
    assert "webinfra_backup" not in lb["play_groups"]
    assert bk["tls_purposes"] == ["backup", "exporters"] and "backup" in db["tls_purposes"]
    assert "backup" not in lb["tls_purposes"]
    assert rules(bk)["backup-agent"] == (3309, ["backups", "db_primary", "db_replicas"])
    assert rules(db)["backup-agent"] == (3309, ["backups", "db_primary", "db_replicas"])
    assert rules(db)["db-binlog-archive"] == (3306, ["backups"])
    assert "backup-agent" not in rules(lb)
    # Without the group (or without databases): no backups.
    assert model("web-01")["backup"]["enabled"] is False
    assert "backup-agent" not in rules(model("web-01"))


def test_the_lab_may_open_the_admin_surfaces_to_every_address():
    groups, hostvars = seed_inventory()
    inputs = {"webinfra_admin_networks": ["0.0.0.0/0"], "webinfra_lab": True}
    model = build("web-01", inputs, groups, hostvars, role_defaults())
    assert model["admin_networks"] == ["0.0.0.0/0"]


def test_acme_names_the_issuer_its_challenge_address_and_opens_what_it_needs():
    groups, hostvars = seed_inventory()
    groups = {**groups, "loadbalancers": ["lb-01", "lb-02"], "all": [*groups["all"], "lb-02"]}
    hostvars = {**hostvars, "lb-02": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.5"}}}}
    inputs = {"webinfra_acme": True, "webinfra_vip": "10.0.0.100"}
    issuer, peer = model("lb-01", inputs, groups, hostvars), model("lb-02", inputs, groups, hostvars)
    assert (
        issuer["acme"]
        == peer["acme"]
        == {
            "enabled": True,
            "issuer": "lb-01",
            "challenge": "10.0.0.2:8402",
            "challenge_address": "10.0.0.2",
            "challenge_port": 8402,
        }
    )
    assert rules(issuer)["acme-http-01"] == (8402, ["loadbalancers"]) and "acme-push" not in rules(issuer)
    assert rules(peer)["acme-push"] == (22, ["10.0.0.2/32"]) and "acme-http-01" not in rules(peer)
    assert "acme-push" not in rules(model("web-01", inputs, groups, hostvars))
    assert model("lb-01")["acme"] == {
        "enabled": False,
        "issuer": "",
        "challenge": "",
        "challenge_address": "",
        "challenge_port": 0,
    }
    with pytest.raises(StackError, match="webinfra_acme must be true or false"):
        model("lb-01", {"webinfra_acme": "maybe"})


def test_exporters_tls_is_one_setting_for_the_exporters_haproxy_and_prometheus():
    assert model("lb-01")["exporters"] == {"tls": False}
    assert model("web-01", {"webinfra_exporters_tls": "true"})["exporters"] == {"tls": True}
    with pytest.raises(StackError, match="webinfra_exporters_tls must be true or false"):
        model("lb-01", {"webinfra_exporters_tls": "sometimes"})


def test_a_partial_model_lists_the_hosts_without_an_address_instead_of_refusing():
    groups, hostvars = seed_inventory()
    hostvars["web-01"] = {k: v for k, v in hostvars["web-01"].items() if k != "ansible_facts"}
    with pytest.raises(StackError, match="no address for web-01"):
        model("web-02", {}, groups, hostvars)
    partial = build("web-02", {}, groups, hostvars, action_role_defaults(), partial=True)
    assert partial["unaddressed"] == ["web-01"] and partial["addresses"]["web-01"] == ""
    assert partial["addresses"]["web-02"] == "10.0.0.4" and partial["db"]["agent_port"] == 3308
    assert model("web-02")["unaddressed"] == []


def test_public_addresses_only_in_the_lab_or_when_allowed():
    groups, hostvars = seed_inventory(**{"web-02": {"webinfra_private_address": "1.2.3.4"}})
    assert model("lb-01", {"webinfra_lab": True}, groups, hostvars)["addresses"]["web-02"] == "1.2.3.4"
    allowed = {"webinfra_public_addresses_allowed": True}
    assert model("lb-01", allowed, groups, hostvars)["addresses"]["web-02"] == "1.2.3.4"
    # Shared address space (RFC 6598, carrier-grade NAT and some clouds' private networks) is private.
    groups, hostvars = seed_inventory(**{"web-02": {"webinfra_private_address": "100.64.1.2"}})
    assert model("lb-01", {}, groups, hostvars)["addresses"]["web-02"] == "100.64.1.2"


def test_writer_check_timing_must_mark_a_frozen_primary_down_before_the_lease_can_expire():
    groups, hostvars = seed_inventory()
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    assert model("lb-01", groups=groups, hostvars=hostvars)["db_writer"]["enabled"]  # defaults: 3.25 s <= 6 s
    hostvars["lb-01"]["haproxy_db_writer_check_timeout"] = "3s"  # 1 + 3 + 3.25 = 7.25 s > 8 - 1 - 1
    with pytest.raises(StackError, match=r"needs up to 7.25 s .* writable 6 s after"):
        model("lb-01", groups=groups, hostvars=hostvars)
    hostvars["web-01"]["mysql_replication_ha_ttl"] = 10  # 7.25 s <= 8 s
    assert model("lb-01", groups=groups, hostvars=hostvars)
    hostvars["lb-01"]["haproxy_db_writer_check_inter"] = "soon"
    with pytest.raises(StackError, match="haproxy_db_writer_check_inter must be an HAProxy duration"):
        model("lb-01", groups=groups, hostvars=hostvars)


def test_etcd_users_follow_each_database_hosts_cluster_name():
    groups, hostvars = seed_inventory(**{"web-02": {"mysql_replication_ha_cluster": "shop"}})
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    users = model("lb-01", groups=groups, hostvars=hostvars)["etcd"]["users"]
    assert users["web-02"]["prefixes"] == ["/webinfra/shop/"]
    groups, hostvars = seed_inventory(**{"web-02": {"mysql_replication_ha_cluster": "a/b"}})
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    with pytest.raises(StackError, match="mysql_replication_ha_cluster of web-02 must be a name without '/'"):
        model("lb-01", groups=groups, hostvars=hostvars)


def test_a_host_named_as_an_etcd_user_is_refused():
    groups, hostvars = seed_inventory()
    groups["etcd"] = ["lb-01", "web-01", "web-02"]
    groups["all"].append("root")
    groups["webservers"].append("root")
    hostvars["root"] = {"ansible_facts": {"default_ipv4": {"address": "10.0.0.7"}}}
    with pytest.raises(StackError, match="host name.s. root would be etcd users"):
        model("lb-01", groups=groups, hostvars=hostvars)
