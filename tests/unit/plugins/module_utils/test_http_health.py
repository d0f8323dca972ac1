import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.http_health import check, check_all, judge

OK = {"status": 200, "headers": {"X-Served-By": "web-01"}, "body": '{"status": "ok"}', "latency_ms": 5}


@pytest.mark.parametrize(
    "expect, problems",
    [
        ({}, []),
        ({"status": [201]}, ["status 200, expected 201"]),
        ({"body_contains": ['"ok"', "db"]}, ["body does not contain 'db'"]),
        ({"body_regex": r"status.*ok"}, []),
        ({"body_regex": r"^down"}, ["body does not match /^down/"]),
        ({"headers": {"x-served-by": "^web-0[12]$"}}, []),
        ({"headers": {"X-Served-By": "web-02"}}, ["header X-Served-By is 'web-01', expected /web-02/"]),
        ({"headers": {"X-Missing": "."}}, ["header X-Missing missing"]),
        ({"max_latency_ms": 1}, ["latency 5 ms above 1 ms"]),
    ],
)
def test_judge(expect, problems):
    assert judge(dict(OK), expect) == problems


def test_failed_request_is_reported_not_raised():
    def refuse(url, method, headers, timeout):
        raise OSError("connection refused")

    report = check_all(refuse, [{"url": "http://10.0.0.9/healthz", "name": "web-09"}])
    assert not report["healthy"] and report["unhealthy"] == ["web-09"]
    assert report["results"][0]["problems"] == ["request failed: connection refused"]


def test_latency_is_measured_with_the_clock():
    ticks = iter([10.0, 10.25])
    result = check(lambda *a: dict(OK), {"url": "http://x/"}, clock=lambda: next(ticks))
    assert result["ok"] and result["latency_ms"] == 250.0 and result["name"] == "http://x/"
