# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP(S) endpoint checks: one request per endpoint, judged against expectations."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time


def judge(response, expect):
    """Problems (list of str) of `response` (status, headers, body, error) against `expect`."""
    problems = []
    if response.get("error"):
        return ["request failed: %s" % response["error"]]
    statuses = expect.get("status") or [200]
    if response["status"] not in statuses:
        problems.append("status %s, expected %s" % (response["status"], " or ".join(str(s) for s in statuses)))
    body = response.get("body") or ""
    for needle in expect.get("body_contains") or []:
        if needle not in body:
            problems.append("body does not contain %r" % needle)
    pattern = expect.get("body_regex")
    if pattern and not re.search(pattern, body):
        problems.append("body does not match /%s/" % pattern)
    headers = dict((k.lower(), v) for k, v in (response.get("headers") or {}).items())
    for name, wanted in (expect.get("headers") or {}).items():
        have = headers.get(name.lower())
        if have is None:
            problems.append("header %s missing" % name)
        elif not re.search(wanted, have):
            problems.append("header %s is %r, expected /%s/" % (name, have, wanted))
    limit = expect.get("max_latency_ms")
    if limit is not None and response.get("latency_ms") is not None and response["latency_ms"] > limit:
        problems.append("latency %.0f ms above %s ms" % (response["latency_ms"], limit))
    return problems


def check(fetch, endpoint, clock=time.time):
    """Request one endpoint with `fetch(url, method, headers, timeout)` and judge it.

    `fetch` returns dict(status, headers, body) or raises; the report never raises.
    """
    started = clock()
    try:
        response = fetch(
            endpoint["url"],
            endpoint.get("method") or "GET",
            endpoint.get("request_headers") or {},
            endpoint.get("timeout") or 10,
        )
    except Exception as exc:  # pylint: disable=broad-except  # any failure is part of the report
        response = {"error": str(exc), "status": None, "headers": {}, "body": ""}
    response["latency_ms"] = round((clock() - started) * 1000.0, 1)
    problems = judge(response, endpoint)
    return {
        "name": endpoint.get("name") or endpoint["url"],
        "url": endpoint["url"],
        "ok": not problems,
        "status": response.get("status"),
        "latency_ms": response["latency_ms"],
        "problems": problems,
        "headers": response.get("headers") or {},
        "body": (response.get("body") or "")[:1000],
    }


def check_all(fetch, endpoints, clock=time.time):
    results = [check(fetch, endpoint, clock) for endpoint in endpoints]
    return {
        "results": results,
        "healthy": all(r["ok"] for r in results),
        "unhealthy": [r["name"] for r in results if not r["ok"]],
    }
