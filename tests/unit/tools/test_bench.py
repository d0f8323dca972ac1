import pytest
import yaml
from bench import common, console, datapath, ha, mitogen, replication, scaling, steps
from bench import deploy as deploy_step
from bench import report as report_step
from bench.matrix import matrix_judge, matrix_lines

WRK = """\
Running 20s test @ https://lb-01/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.34ms    5.67ms  98.76ms   75.00%
    Req/Sec     1.30k   120.00     1.60k    70.00%
  Latency Distribution
     50%   11.50ms
     75%   14.00ms
     90%   18.00ms
     99%    1.20s
  52000 requests in 20.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   2600.12
Transfer/sec:    512.00KB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors():
    assert datapath.parse_wrk(WRK) == {
        "rps": 2600.12,
        "p50_ms": 11.5,
        "p75_ms": 14.0,
        "p90_ms": 18.0,
        "p99_ms": 1200.0,
        "non_2xx": 7,
        "socket_errors": 3,
    }


def test_parse_wrk_microseconds_and_clean_run():
    text = "     50%  850.00us\n     99%    2.10ms\nRequests/sec:  10.5\n"
    assert datapath.parse_wrk(text) == {
        "rps": 10.5,
        "p50_ms": 0.85,
        "p75_ms": None,
        "p90_ms": None,
        "p99_ms": 2.1,
        "non_2xx": 0,
        "socket_errors": 0,
    }


def test_sysbench_intervals_are_read_per_second():
    text = (
        "[ 1s ] thds: 4 tps: 512.93 qps: 3086.58 (r/w/o: 0.00/2056.72/1029.86) lat (ms,95%): 12.08 err/s: 0.00\n"
        "[ 2s ] thds: 4 tps: 498.00 qps: 2988.03 (r/w/o: 0.00/1992.02/996.01) lat (ms,95%): 13.46 err/s: 0.00\n"
        "SQL statistics:\n    transactions: 1000 (500.00 per sec.)\n"
    )
    assert replication.sysbench_intervals(text) == [[1.0, 512.93, 12.08], [2.0, 498.0, 13.46]]


def test_a_timeline_is_relative_to_the_fault_and_sorted():
    events = [
        {"start": 105.5, "end": 106.0, "ok": False, "error": "HTTP 503"},
        {"start": 99.0, "end": 99.25, "ok": True, "error": None},
    ]
    assert ha.timeline(events, 100.0, {"fault": 0.0, "healed": 6.123, "never": None}) == {
        "requests": [[-1.0, 0.25, 1], [5.5, 0.5, 0]],
        "marks": {"fault": 0.0, "healed": 6.12},
    }


def test_page_rows_reads_the_rendered_overview_page():
    html = (
        '<h2 id="backends">Backends</h2><table><tr><th>balancer</th><th>server</th></tr>\n'
        '<tr><td>lb-01</td><td>web-01</td><td class="ok">UP</td><td class="num">1.5</td><td>0.00</td></tr>'
        "</table>"
    )
    assert console.page_rows(html, "backends") == [["lb-01", "web-01", "UP", "1.5", "0.00"]]
    assert console.page_rows(html, "backups") == []


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [([], 99, None), ([3, 1, 2], 50, 2), ([0] * 99 + [9], 99, 0), ([0] * 98 + [9, 9], 99, 9)],
)
def test_percentile(values, pct, expected):
    assert common.percentile(values, pct) == expected


def test_targets_are_judged_not_asserted():
    results = {
        "deploy": {"noop_rerun": {"seconds": 42.0, "changed": 0}},
        "datapath": {"app_ratio": 0.85},
        "faults": {"failed": 0},
        "replication": {"lag_p99_seconds": 3.0},
    }
    assert report_step.judge(results) == {
        "noop_rerun_changed_0_under_60s": True,
        "balancer_app_rps_at_least_0.9_of_direct": False,
        "backend_kill_0_failed": True,
        "replication_lag_p99_at_most_1s": False,
    }


def test_the_backup_step_is_reported():
    report = {
        "started": "2026-11-30T160000Z",
        "debian": "13",
        "machine": {"cpus": 4, "cpu": "x", "memory_gib": 8, "kernel": "6", "podman": "podman 5"},
        "results": {
            "backup": {
                "backup_host": "lb-01",
                "database_bytes": 1_100_000_000,
                "backup": {"source": "web-02", "seconds": 20.0, "mb_per_second": 55.0, "compressed_bytes": 300e6},
                "archive_lag": {"samples": 60, "p50_seconds": 0.1, "p99_seconds": 0.3, "max_seconds": 0.4},
                "restore_seconds": 42.0,
                "restored_rows": 4000,
                "restored_rows_expected": 4000,
            }
        },
        "targets_met": {},
    }
    text = report_step.markdown(report)
    assert "| full backup of 1.10 GB (web-02 to lb-01) | 20.0 s, 55.0 MB/s, 300 MB stored |" in text
    assert "p50 0.1 s, p99 0.3 s, max 0.4 s" in text and "42.0 s, 4000 of 4000 rows" in text


HISTORY = """
Start-Date: 2026-12-01  00:10:01
Requested-By: root
Install: nginx:amd64 (1.26.3-3), libnginx-mod-stream:amd64 (1.26.3-3, automatic), gunicorn:all (23.0.0-1)
End-Date: 2026-12-01  00:10:09

Start-Date: 2026-12-01  00:11:00
Commandline: apt-get install -y mariadb-server
Install: mariadb-server:amd64 (1:11.8.3-0+deb13u1), galera-4:amd64 (26.4.22-1, automatic)
Upgrade: libc6:amd64 (2.41-11, 2.41-12)
End-Date: 2026-12-01  00:11:30
"""


def test_the_packages_a_deploy_requested_are_read_from_apt_history():
    assert deploy_step.requested_packages(HISTORY) == ["gunicorn", "mariadb-server", "nginx"]
    assert deploy_step.requested_packages("") == []


def test_deploy_rows_show_the_floors_and_ratios():
    deploy = {
        "fresh": {"seconds": 130.0, "changed": 136},
        "noop_rerun": {"seconds": 40.0, "changed": 0},
        "check": {"seconds": 35.0, "changed": 0},
        "fresh_again": {"seconds": 128.0, "changed": 136},
        "apt_floor": {"seconds": 64.0, "packages": {"lb-01": 9}},
        "module_floor": {"seconds": 4.0},
        "ratios": {"fresh_to_apt_floor": 2.0, "noop_to_module_floor": 10.0},
    }
    rows = deploy_step.deploy_lines(deploy)
    assert "| floor: one apt transaction per host, all hosts at once | 64.0 s |" in rows
    assert "| no-op re-run / its floor | 10.0 |" in rows
    assert len(deploy_step.deploy_lines({k: deploy[k] for k in ("fresh", "noop_rerun", "check")})) == 3


def test_where_the_time_goes_per_play_kind_and_task():
    timeline = {
        "seconds": 20.0,
        "plays": [{"name": "checks", "start": 0.0}, {"name": "web", "start": 5.0}],
        "tasks": [
            {"name": "Gathering Facts", "action": "gather_facts", "handler": False, "start": 0.1, "hosts": {}},
            {
                "name": "Install nginx",
                "action": "ansible.builtin.apt",
                "handler": False,
                "start": 5.0,
                "hosts": {"w": [14.0, "changed"]},
            },
            {"name": "Wait until ready", "action": "ansible.builtin.uri", "handler": False, "start": 14.0, "hosts": {}},
            {
                "name": "Restart nginx",
                "action": "ansible.builtin.systemd_service",
                "handler": True,
                "start": 16.0,
                "hosts": {},
            },
        ],
    }
    out = deploy_step.where_time_goes(timeline, top=2)
    assert out["plays"] == [{"name": "checks", "seconds": 5.0}, {"name": "web", "seconds": 15.0}]
    assert out["categories"] == {"packages": 9.0, "facts and includes": 4.9, "handlers": 4.0, "waits": 2.0}
    assert [t["name"] for t in out["longest_tasks"]] == ["Install nginx", "Gathering Facts"]
    assert out["longest_tasks"][0]["hosts"] == ["w"]


def test_a_scaling_shape_is_the_lab_with_more_web_servers_each_hosting_a_database():
    files = scaling.scale_inventory(4, 2, "---\nwebinfra_lab_name: webinfra-lab\n")
    hosts = yaml.safe_load(files["hosts.yml"])["all"]["children"]
    assert list(hosts["webservers"]["hosts"]) == ["web-01", "web-02", "web-03", "web-04"]
    assert list(hosts["db_primary"]["hosts"]) == ["web-01"] and list(hosts["db_replicas"]["hosts"]) == [
        "web-02",
        "web-03",
    ]
    assert hosts["loadbalancers"]["hosts"]["lb-01"] == {"ansible_host": "webinfra-scale-lb-01"}
    assert "webinfra_lab_publish" not in files["hosts.yml"]
    assert yaml.safe_load(files["group_vars/all/10-scale.yml"])["webinfra_lab_name"] == "webinfra-scale"
    with pytest.raises(ValueError, match="1 to 1 replicas"):
        scaling.scale_inventory(2, 2, "")
    rows = scaling.scaling_lines(
        {
            "shapes": [
                {
                    "webs": 2,
                    "replicas": 1,
                    "hosts": 3,
                    "fresh_seconds": 120.0,
                    "fresh_changed": 140,
                    "noop_seconds": 40.0,
                    "noop_changed": 0,
                    "module_floor_seconds": 1.2,
                }
            ]
        }
    )
    assert rows == [
        "| site.yml, 2 web servers, 1 replica(s) (3 hosts) | fresh 120.0 s (changed=140), no-op 40.0 s "
        "(changed=0), module floor 1.2 s |"
    ]


def test_the_mitogen_rows_compare_both_strategies():
    rows = mitogen.mitogen_lines(
        {
            "noop_runs": {
                "linear": [{"seconds": 40.0, "changed": 0}] * 2,
                "mitogen": [{"seconds": 20.0, "changed": 0}],
            },
            "noop_best": {"linear": 40.0, "mitogen": 20.0},
            "fresh": {"linear": {"seconds": 120.0, "changed": 140}, "mitogen": {"seconds": 100.0, "changed": 140}},
            "ratios": {"noop_mitogen_to_linear": 0.5, "fresh_mitogen_to_linear": 0.83},
        }
    )
    assert rows[0] == "| site.yml no-op re-run, linear / Mitogen (best of 2) | 40.0 s / 20.0 s (ratio 0.5) |"
    assert "120.0 s / 100.0 s (ratio 0.83; changed 140 / 140)" in rows[1]


def test_scaling_shapes_are_parsed_and_a_bad_one_is_named():
    assert scaling.parse_shapes("2x1, 4x2") == ((2, 1), (4, 2))
    assert scaling.parse_shapes(",".join(f"{w}x{r}" for w, r in scaling.SCALING_SHAPES)) == scaling.SCALING_SHAPES
    for bad in ("4", "2x2", "3x0", "ax1"):
        with pytest.raises(SystemExit, match=f"'{bad}' is not WEBSxREPLICAS"):
            scaling.parse_shapes(bad)


def test_every_step_module_is_in_the_registry_in_run_order():
    order = ("deploy", "mitogen", "datapath", "faults", "replication", "console", "backup", "ha", "scaling")
    assert steps.STEPS == order
    for name, step in steps.REGISTRY.items():
        assert step.name == name and step.summary and callable(step.run) and callable(step.lines)
    # The steps that create their own labs run without the default one.
    assert {n for n, s in steps.REGISTRY.items() if not s.needs_lab} == {"ha", "scaling"}


def test_the_fault_matrix_rows_and_verdicts():
    rows = {
        "freeze-host": {
            "fault": "leader's host frozen",
            "failover": True,
            "trials": 3,
            "window_median_seconds": 8.9,
            "window_worst_seconds": 9.6,
            "lost_acknowledged_writes": 0,
            "acknowledged_writes": 900,
            "double_writable_samples": 0,
        },
        "lossy-etcd-link": {
            "fault": "lossy link",
            "failover": False,
            "trials": 1,
            "window_median_seconds": 4.0,
            "window_worst_seconds": 4.0,
            "lost_acknowledged_writes": 0,
            "acknowledged_writes": 300,
            "double_writable_samples": 0,
        },
    }
    lines = matrix_lines(rows)
    assert "| leader's host frozen | 3 | 8.9 s | 9.6 s | 0 of 900 | 0 |" in lines
    assert matrix_judge(rows) == {
        "matrix_0_lost_never_two_writable": True,
        "matrix_failover_median_at_most_10s_worst_at_most_15s": True,
    }
    rows["freeze-host"]["window_worst_seconds"] = 16
    assert not matrix_judge(rows)["matrix_failover_median_at_most_10s_worst_at_most_15s"]
