import bench
import pytest

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
    assert bench.parse_wrk(WRK) == {"rps": 2600.12, "p50_ms": 11.5, "p99_ms": 1200.0, "non_2xx": 7, "socket_errors": 3}


def test_parse_wrk_microseconds_and_clean_run():
    text = "     50%  850.00us\n     99%    2.10ms\nRequests/sec:  10.5\n"
    assert bench.parse_wrk(text) == {"rps": 10.5, "p50_ms": 0.85, "p99_ms": 2.1, "non_2xx": 0, "socket_errors": 0}


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [([], 99, None), ([3, 1, 2], 50, 2), ([0] * 99 + [9], 99, 0), ([0] * 98 + [9, 9], 99, 9)],
)
def test_percentile(values, pct, expected):
    assert bench.percentile(values, pct) == expected


def test_targets_are_judged_not_asserted():
    results = {
        "deploy": {"noop_rerun": {"seconds": 42.0, "changed": 0}},
        "datapath": {"app_ratio": 0.85},
        "faults": {"failed": 0},
        "replication": {"lag_p99_seconds": 3.0},
    }
    assert bench.judge(results) == {
        "noop_rerun_changed_0_under_60s": True,
        "balancer_app_rps_at_least_0.9_of_direct": False,
        "backend_kill_0_failed": True,
        "replication_lag_p99_at_most_1s": False,
    }
