import json

import charts
import pytest


def test_longest_outage_is_measured_from_answer_to_answer():
    requests = [[0.0, 0.1, 1], [0.5, 0.1, 1], [1.0, 3.0, 0], [1.2, 0.1, 0], [4.0, 0.2, 1], [4.5, 0.1, 1]]
    # Last answer before the outage ends at 0.6, the next at 4.2.
    assert charts.longest_outage(requests) == pytest.approx((0.6, 4.2))


def test_no_outage_when_no_gap_is_longer_than_a_request():
    requests = [[0.0, 0.3, 1], [0.2, 0.3, 1], [0.4, 0.3, 1]]
    assert charts.longest_outage(requests) is None
    assert charts.longest_outage([[0.0, 1.0, 0]]) is None


def test_a_load_that_ends_in_failures_ends_in_an_outage():
    requests = [[0.0, 0.1, 1], [0.2, 0.1, 1], [0.4, 3.0, 0]]
    assert charts.longest_outage(requests) == pytest.approx((0.3, 3.4))


def report():
    timeline = {"requests": [[-1.0, 0.1, 1], [0.5, 3.0, 0], [4.0, 0.1, 1]], "marks": {"leader frozen": 0.0}}
    trial = {"frozen": "db-01", "promoted": "db-02", "timeline": dict(timeline, marks={"new leader writable": 3.5})}
    return {
        "started": "2026-12-01T000000Z",
        "results": {
            "ha": {
                "lb_failover": {"max_gap_seconds": 2.1, "failed": 3, "requests": 300, "timeline": timeline},
                "switchover": {
                    "write_window_seconds": 1.0,
                    "lost_acknowledged_writes": 0,
                    "acknowledged_writes": 400,
                    "timeline": timeline,
                },
                "auto_failover": {
                    "trials": [trial, trial],
                    "write_window_median_seconds": 17.0,
                    "write_window_worst_seconds": 22.0,
                    "lost_acknowledged_writes": 0,
                },
            },
            "replication": {
                "series": {
                    "tps": [[1.0, 500.0, 12.0], [2.0, 510.0, 11.0]],
                    "lag_start_seconds": -0.5,
                    "lag_interval_seconds": 1.0,
                    "lag": [0, None, 1],
                }
            },
            "datapath": {
                "connections": 32,
                "app_balancer": {"rps": 1000.0, "p50_ms": 10.0, "p75_ms": 12.0, "p90_ms": 20.0, "p99_ms": 80.0},
                "app_direct": {"rps": 2000.0, "p50_ms": 5.0, "p75_ms": 6.0, "p90_ms": 9.0, "p99_ms": 30.0},
                "app_ratio": 0.5,
            },
            "deploy": {"fresh": {"seconds": 190.0}, "noop_rerun": {"seconds": 50.0}, "check": {"seconds": 52.0}},
        },
    }


def test_the_failover_panels_carry_every_timeline():
    panels = charts.failover_panels(report())
    assert [len(p["rows"]) for p in panels] == [1, 1, 2]
    assert panels[2]["row_marks"] == [3.5, 3.5]
    assert "worst 22.0 s" in panels[2]["title"]
    assert charts.failover_panels({"results": {}}) == []


def test_lag_series_skips_missing_samples_and_aligns_to_the_run():
    series = charts.lag_series(report())
    assert series["lag"] == [(-0.5, 0), (1.5, 1)]
    assert series["tps"] == [(1.0, 500.0), (2.0, 510.0)]


def test_datapath_table_groups_pages_and_paths():
    table = charts.datapath_table(report())
    assert set(table) == {"app"} and set(table["app"]) == {"balancer", "direct"}


def test_deploy_history_reads_every_run_but_latest(tmp_path):
    for name, started, fresh in (("b", "2026-12-02T000000Z", 180.0), ("a", "2026-12-01T000000Z", 190.0)):
        data = report()
        data["started"] = started
        data["results"]["deploy"]["fresh"]["seconds"] = fresh
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "latest.json").write_text(json.dumps(report()))
    (tmp_path / "broken.json").write_text("{")
    runs = charts.deploy_history(sorted(tmp_path.glob("*.json")))
    assert [(r["started"], r["fresh"]) for r in runs] == [("2026-12-01T000000Z", 190.0), ("2026-12-02T000000Z", 180.0)]


def test_every_chart_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(report()))
    (tmp_path / "2026-12-01T000000Z.json").write_text(json.dumps(report()))
    assert charts.main([str(path), "--docs", str(tmp_path / "docs")]) == 0
    for name in ("failover", "lag", "datapath", "deploy"):
        png = tmp_path / "docs" / f"bench-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_history_comes_first_and_a_published_run_is_recorded_once(tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"label": "stop 2", "fresh": 250.0, "noop_rerun": 130.0, "check": 130.0}]))
    data = report()
    (tmp_path / "run.json").write_text(json.dumps(data))
    earlier = json.loads(history.read_text())
    runs = charts.deploy_history([tmp_path / "run.json"], earlier)
    assert [r.get("label") or r["started"] for r in runs] == ["stop 2", "2026-12-01T000000Z"]
    assert charts.record_deploy(history, data) is True
    assert charts.record_deploy(history, data) is False
    recorded = json.loads(history.read_text())
    assert recorded[-1] == {"started": "2026-12-01T000000Z", "fresh": 190.0, "noop_rerun": 50.0, "check": 52.0}
    # Once recorded, the results file's run is not drawn twice.
    assert len(charts.deploy_history([tmp_path / "run.json"], recorded)) == 2


def test_the_scaling_curve_is_the_one_replica_shapes_by_host_count():
    shape = {"fresh_seconds": 100.0, "noop_seconds": 40.0, "module_floor_seconds": 1.0}
    report = {
        "results": {
            "scaling": {
                "shapes": [
                    {"webs": 4, "replicas": 1, "hosts": 5, **shape},
                    {"webs": 2, "replicas": 1, "hosts": 3, **shape},
                    {"webs": 2, "replicas": 2, "hosts": 3, **shape},
                ]
            }
        }
    }
    series = charts.scaling_series(report)
    assert [s["hosts"] for s in series["curve"]] == [3, 5] and [o["replicas"] for o in series["others"]] == [2]
    assert charts.scaling_series({"results": {}}) is None


def matrix_rows():
    cell = {"window_s": 8.5, "lost": [], "direct_lost": [], "acked": 200, "direct_acked": 60, "double_writable": []}
    return {
        "freeze-host": {
            "fault": "leader's host frozen",
            "failover": True,
            "trials": 2,
            "failed_trials": [],
            "window_median_seconds": 8.75,
            "window_worst_seconds": 9.0,
            "lost_acknowledged_writes": 0,
            "acknowledged_writes": 520,
            "double_writable_samples": 0,
            "cells": [cell, dict(cell, window_s=9.0)],
        },
        "config-change": {
            "fault": "a configuration change",
            "failover": False,
            "trials": 0,
            "failed_trials": ["CalledProcessError: site.yml"],
            "window_median_seconds": None,
            "cells": [],
        },
    }


def test_the_matrix_series_comes_from_a_report_or_the_bench_s_own_file():
    series = charts.matrix_series({"results": {"ha": {"matrix": matrix_rows()}}})
    assert [r["windows"] for r in series] == [[8.5, 9.0], []]
    assert series[1]["failed"] == 1 and series[0]["acked"] == 520
    assert charts.matrix_series(matrix_rows()) == series
    assert charts.matrix_series({"results": {}}) is None


def test_the_matrix_chart_is_drawn_from_the_bench_s_own_file(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "2026-12-07T105304Z-matrix.json"
    path.write_text(json.dumps(matrix_rows()))
    assert charts.main([str(path), "--docs", str(tmp_path / "docs")]) == 0
    png = tmp_path / "docs" / "bench-matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
