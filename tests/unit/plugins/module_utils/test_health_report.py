import pytest

from ansible_collections.webinfra.distributed.plugins.filter.health_report import health_report
from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import GtidError
from ansible_collections.webinfra.distributed.plugins.module_utils.health_report import (
    build_report,
    disk_usage,
    gtid_gap,
)

MOUNTS = [
    {"mount": "/", "fstype": "overlay", "size_total": 1000, "size_available": 400},
    {"mount": "/run", "fstype": "tmpfs", "size_total": 100, "size_available": 1},
    {"mount": "/var", "fstype": "ext4", "size_total": 1000, "size_available": 100},
]


def server(name, status, admin="READY", sessions=0):
    return {"server": name, "status": status, "admin_state": admin, "current_sessions": sessions}


def lb(web=("UP", "UP"), writer=None):
    backends = {"webservers": {"servers": [server("web-01", web[0]), server("web-02", web[1])]}}
    if writer is not None:
        backends["db_writer"] = {"servers": [server("db-01", writer[0]), server("db-02", writer[1])]}
    return {"backends": backends}


def primary(pos="0-1-100", read_only=False):
    return {"replica": None, "read_only": read_only, "replicas": [{}], "gtid": {"binlog_pos": pos}}


def replica(pos="0-1-100", lag=0, io=True, sql=True, io_error=""):
    return {
        "replica": {
            "io_running": io,
            "sql_running": sql,
            "seconds_behind": lag,
            "last_io_error": io_error,
            "last_sql_error": "",
        },
        "read_only": True,
        "gtid": {"replica_pos": pos},
    }


def stack(**overrides):
    hosts = {
        "lb-01": {"reached": True, "lb": lb(writer=("UP", "DOWN")), "vip_held": True},
        "lb-02": {"reached": True, "lb": lb(writer=("UP", "DOWN")), "vip_held": False},
        "db-01": {"reached": True, "db": primary()},
        "db-02": {"reached": True, "db": replica()},
    }
    hosts.update(overrides)
    return hosts


def report(hosts, **kw):
    kw.setdefault("primary", "db-01")
    kw.setdefault("vip", "10.0.0.100")
    kw.setdefault("loadbalancers", ["lb-01", "lb-02"])
    return build_report(hosts, **kw)


def test_disk_usage_picks_the_fullest_real_filesystem():
    assert disk_usage(MOUNTS) == {"mount": "/var", "used_percent": 90.0}
    assert disk_usage([]) is None


def test_gtid_gap_is_per_domain():
    assert gtid_gap("0-1-120,1-1-7", "0-1-100,1-1-7") == {"0": 20, "1": 0}
    # A domain the replica never saw counts whole; a replica ahead counts 0.
    assert gtid_gap("0-1-120,2-1-5", "0-1-130") == {"0": 0, "2": 5}
    assert gtid_gap("", "0-1-1") == {}


def test_gtid_gap_mysql_counts_missing_transactions():
    u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    assert gtid_gap(f"{u}:1-10", f"{u}:1-7") == {u: 3}


def test_gtid_gap_refuses_garbage():
    with pytest.raises(GtidError):
        gtid_gap("0-1", "0-1-1")


def test_healthy_stack_with_writer_endpoint_and_vip():
    r = report(stack())
    assert r["healthy"], r["problems"]
    assert r["vip_holder"] == "lb-01"
    writer = [row for row in r["checks"] if row[1] == "writer db_writer"]
    assert writer[0][2:] == ["ok", "writes go to db-01; standby (read-only): db-02"]
    assert any(row[0] == "virtual IP" and "held by lb-01" in row[3] for row in r["checks"])
    assert len(r["table"]) == len(r["checks"])


@pytest.mark.parametrize(
    ("writer", "problem"),
    [
        (("UP", "UP"), "lb-01: writer endpoint db_writer has servers UP: db-01, db-02"),
        (("DOWN", "DOWN"), "lb-01: writer endpoint db_writer has no writable server UP"),
    ],
)
def test_writer_endpoint_needs_exactly_one_server_up(writer, problem):
    r = report(stack(**{"lb-01": {"reached": True, "lb": lb(writer=writer), "vip_held": True}}))
    assert not r["healthy"]
    assert problem in r["problems"]


def test_a_web_server_down_is_a_problem():
    r = report(stack(**{"lb-02": {"reached": True, "lb": lb(web=("UP", "DOWN"), writer=("UP", "DOWN"))}}))
    assert r["problems"] == ["lb-02: webservers/web-02 is DOWN"]


@pytest.mark.parametrize(
    ("held", "detail"),
    [((False, False), "held by nobody"), ((True, True), "held by 2 balancers: lb-01, lb-02")],
)
def test_vip_must_be_held_by_exactly_one_balancer(held, detail):
    hosts = stack()
    hosts["lb-01"]["vip_held"], hosts["lb-02"]["vip_held"] = held
    r = report(hosts)
    assert r["problems"] == [f"virtual IP 10.0.0.100 is {detail}"]
    assert r["vip_holder"] is None


def test_no_vip_no_vip_row():
    r = report(stack(), vip="")
    assert r["healthy"] and r["vip_holder"] is None
    assert not any(row[0] == "virtual IP" for row in r["checks"])


def test_replica_lag_threads_and_gap():
    r = report(stack(**{"db-02": {"reached": True, "db": replica(pos="0-1-90", lag=12)}}))
    assert r["problems"] == ["db-02: replica io=yes sql=yes lag=12s gtid_gap=0:10"]
    r = report(stack(**{"db-02": {"reached": True, "db": replica(io=False, io_error="error 1236")}}))
    assert r["problems"] == ["db-02: replica io=no sql=yes lag=0s gtid_gap=0:0 error 1236"]
    r = report(stack(**{"db-02": {"reached": True, "db": replica(lag=None)}}))
    assert not r["healthy"]


def test_read_only_primary_unreadable_database_and_unreachable_host():
    r = report(
        stack(
            **{
                "db-01": {"reached": True, "db": primary(read_only=True)},
                "db-02": {"reached": True, "db": {"msg": "connection refused"}},
                "web-01": {"reached": False},
            }
        )
    )
    assert r["problems"] == [
        "db-01: primary is read-only",
        "db-02: database: connection refused",
        "web-01: unreachable",
    ]


def test_disk_and_endpoints():
    endpoints = {
        "results": [
            {"name": "prometheus", "ok": True, "status": 200, "latency_ms": 3},
            {"name": "alertmanager", "ok": False, "problems": ["connection refused"]},
        ]
    }
    hosts = stack(
        **{"mon-01": {"reached": True, "disk": {"mount": "/", "used_percent": 95.0}, "monitoring": endpoints}}
    )
    r = report(hosts)
    assert r["problems"] == ["mon-01: disk / 95.0% used", "mon-01: alertmanager: connection refused"]


def test_haproxy_without_answer():
    r = report(stack(**{"lb-02": {"reached": True, "lb": {"msg": "socket missing"}}}))
    assert r["problems"] == ["lb-02: haproxy: socket missing"]


def test_filter_reads_hostvars_and_groups():
    facts = {"mounts": MOUNTS, "all_ipv4_addresses": ["10.0.0.2", "10.0.0.100"]}
    hostvars = {
        "lb-01": {"ansible_facts": facts, "__health_lb": lb(writer=("UP", "DOWN")), "webinfra_stack": {}},
        "db-01": {"ansible_facts": {"mounts": MOUNTS}, "__health_db": primary(), "webinfra_stack": {}},
        "db-02": {"ansible_facts": {"mounts": MOUNTS}, "__health_db": replica(pos="0-1-99")},
        "web-01": {},
    }
    groups = {"all": sorted(hostvars), "loadbalancers": ["lb-01"], "db_primary": ["db-01"]}
    r = health_report(hostvars, groups, vip="10.0.0.100", max_disk_percent=95)
    assert r["vip_holder"] == "lb-01"
    assert r["problems"] == [
        "db-02: the stack model could not be computed for it (see the run's first play): not checked",
        "web-01: unreachable",
    ]
    assert ["db-02", "replica", "ok", "io=yes sql=yes lag=0s gtid_gap=0:1"] in r["checks"]


def test_a_reached_host_without_the_stack_model_is_a_problem():
    r = report(stack(**{"web-01": {"reached": True, "model": False}}))
    assert r["problems"] == [
        "web-01: the stack model could not be computed for it (see the run's first play): not checked"
    ]


def ha(role, leader, **extra):
    return {"status": 200, "json": dict({"role": role, "leader": leader}, **extra)}


def test_ha_agents_must_agree_on_the_leader_and_hold_no_errant_transactions():
    hosts = {
        "db-01": {"reached": True, "ha": ha("replica", "db-02", paused=True)},
        "db-02": {"reached": True, "ha": ha("primary", "db-02")},
    }
    report = build_report(hosts, primary="db-01")
    assert report["healthy"], report["problems"]
    assert any("PAUSED" in line for line in report["table"])
    hosts["db-01"]["ha"] = ha("replica", "db-01", errant="0-1-7 not in the leader")
    report = build_report(hosts, primary="db-01")
    assert not report["healthy"]
    assert any("different leaders: db-01, db-02" in p for p in report["problems"])
    assert any("errant: 0-1-7" in p for p in report["problems"])


def test_ha_agent_not_answering_or_no_leader_is_a_problem():
    hosts = {
        "db-01": {"reached": True, "ha": {"status": -1, "msg": "connection refused"}},
        "db-02": {"reached": True, "ha": ha("candidate", None, blocked="a failover happened 10 s ago")},
        "web-01": {"reached": True, "ha": {"skipped": True}},
    }
    report = build_report(hosts)
    assert "db-01: the HA agent does not answer (connection refused)" in report["problems"]
    assert any("may not take over: a failover happened" in p for p in report["problems"])
    assert not any(p.startswith("web-01") for p in report["problems"])
