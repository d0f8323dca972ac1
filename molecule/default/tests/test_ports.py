"""Every cross-tier port moved in the inventory, once (molecule.yml): the serving hosts listen
there, their firewalls open it (and not the default), Prometheus scrapes it, and the writer
endpoint and the application connect to it. No second default of the number anywhere."""

import base64
import json
import re

import pytest
from labhosts import groups, haproxy_stat, host, hostvars, http_get, wait_for

LBS = groups()["loadbalancers"]
WEBS = groups()["webservers"]
DBS = groups()["db_primary"] + groups()["db_replicas"]
MONITOR = groups()["monitoring"][0]
STACK = sorted(set(LBS + WEBS + DBS + [MONITOR] + groups()["etcd"] + groups()["backups"]))

# variable -> (the roles' default, the hosts serving it, Prometheus' job or None)
PORTS = {
    "exporters_node_port": (9100, STACK, "node"),
    "exporters_nginx_port": (9113, WEBS, "nginx"),
    "exporters_mysqld_port": (9104, DBS, "mysqld"),
    "haproxy_metrics_port": (8405, LBS, "haproxy"),
    "mysql_replication_port": (3306, DBS, None),
    "mysql_replication_agent_port": (3308, DBS, "ha_agent"),
}


def moved(var):
    return int(hostvars(DBS[0])[var])


def opened(name):
    """Every port the host's firewall table accepts (single ports and sets)."""
    ruleset = host(name).check_output("nft list table inet webinfra")
    specs = re.findall(r"dport (\{[^}]*\}|\d+)", ruleset)
    return {int(n) for spec in specs for n in re.findall(r"\d+", spec)}


def listening(name):
    return {int(line.split()[3].rpartition(":")[2]) for line in host(name).check_output("ss -Hltn").splitlines()}


def test_the_scenario_moves_every_cross_tier_port():
    """Without this, every test below would pass on the defaults and prove nothing."""
    for var, (default, _hosts, _job) in PORTS.items():
        assert moved(var) != default, var


@pytest.mark.parametrize("var", sorted(PORTS))
def test_the_serving_hosts_listen_on_the_moved_port_and_their_firewall_opens_it(var):
    default, hosts, _job = PORTS[var]
    port = moved(var)
    for name in hosts:
        ports = listening(name)
        assert port in ports and default not in ports, (name, var, sorted(ports))
        accepted = opened(name)
        assert port in accepted and default not in accepted, (name, var, sorted(accepted))


def test_prometheus_scrapes_every_exporter_at_its_moved_port():
    user = hostvars(MONITOR).get("monitoring_web_user", "admin")
    auth = base64.b64encode(f"{user}:{hostvars(MONITOR)['monitoring_web_password']}".encode()).decode()
    monitor = host(MONITOR)
    address = monitor.interface("eth0").addresses[0]
    prometheus_port = hostvars(MONITOR).get("monitoring_prometheus_port", 9090)
    url = f"https://{address}:{prometheus_port}/api/v1/targets"
    jobs = {job: (moved(var), hosts) for var, (_d, hosts, job) in PORTS.items() if job}

    def scraped():
        resp = http_get(monitor, url, {"Authorization": f"Basic {auth}"})
        active = json.loads(resp["body"])["data"]["activeTargets"]
        seen = {}
        for target in active:
            job = target["labels"]["job"]
            if job in jobs:
                port = int(target["scrapeUrl"].split("/")[2].rpartition(":")[2])
                seen[(job, target["labels"]["instance"])] = (port, target["health"])
        want = {(job, name): (port, "up") for job, (port, hosts) in jobs.items() for name in hosts}
        return seen if seen == want else None

    assert wait_for(scraped, timeout=60, interval=2), http_get(monitor, url, {"Authorization": f"Basic {auth}"})


def test_the_writer_endpoint_and_the_application_use_the_moved_database_port():
    port = moved("mysql_replication_port")
    for lb in LBS:
        servers = [row for row in haproxy_stat(host(lb)) if row["pxname"] == "db_writer" and row["svname"] in DBS]
        assert sorted(row["svname"] for row in servers) == sorted(DBS)
        assert all(row["addr"].endswith(f":{port}") for row in servers), servers
        # Exactly one server (the writable leader) is UP behind the endpoint.
        assert [row["status"] for row in servers].count("UP") == 1, servers
    # The web server on the primary's host reads from the replica at its port.
    env = host(groups()["db_primary"][0]).check_output("cat /etc/webapp/environment")
    assert f'DB_READ_PORT="{port}"' in env.splitlines(), env
