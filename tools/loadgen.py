"""Bounded HTTP load for tests and benchmarks (standard library only).

Sends at most --requests GET requests with --concurrency threads for at most --duration
seconds, and prints one JSON summary: counts, failures (with reasons), latency percentiles,
which backend and which application version answered, and per backend the versions in the
order they were seen (to prove a rolling update moved every server from old to new).
Only for the project's own hosts or ports published on 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 * (len(ordered) - 1))))]


def pin_address(host, attempts=5):
    """Resolve `host` once (a few attempts) and answer every later lookup of it with that
    address: the load measures the service, not the client's resolver (podman's DNS once failed
    one lookup in 12,500 under load). TLS still verifies the certificate against `host`."""
    for attempt in range(attempts):
        try:
            address = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][4][0]
            break
        except socket.gaierror:
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    real = socket.getaddrinfo

    def getaddrinfo(name, *args, **kwargs):
        return real(address if name == host else name, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    return address


def main(argv=None):  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=120.0, help="stop after this many seconds")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="pause after each request, per thread (0: as fast as the service answers)",
    )
    parser.add_argument("--cafile", help="CA certificate to verify HTTPS with (for example the internal CA)")
    parser.add_argument("--ready-file", help="touch this file once the first request succeeded")
    parser.add_argument("--stop-file", help="stop once this file exists")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must be http(s)")

    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    pin_address(urllib.parse.urlsplit(args.url).hostname)
    lock = threading.Lock()
    state = {"issued": 0, "ok": 0, "failed": 0, "errors": {}, "by_host": {}, "by_version": {}, "versions": {}}
    latencies = []
    deadline = time.time() + args.duration
    started = time.time()

    def record(ok, host, version, error, latency):
        with lock:
            if ok:
                state["ok"] += 1
                state["by_host"][host] = state["by_host"].get(host, 0) + 1
                state["by_version"][version] = state["by_version"].get(version, 0) + 1
                seen = state["versions"].setdefault(host, [])
                if not seen or seen[-1] != version:
                    seen.append(version)
                latencies.append(latency)
                if args.ready_file and state["ok"] == 1:
                    open(args.ready_file, "w").close()  # noqa: SIM115
            else:
                state["failed"] += 1
                state["errors"][error] = state["errors"].get(error, 0) + 1

    def worker():
        while True:
            with lock:
                if state["issued"] >= args.requests or time.time() >= deadline:
                    return
                if args.stop_file and state["issued"] % 50 == 0 and os.path.exists(args.stop_file):
                    return
                state["issued"] += 1
            t0 = time.time()
            try:
                req = urllib.request.Request(args.url, headers={"Connection": "close"})  # noqa: S310
                with urllib.request.urlopen(req, timeout=args.timeout, context=context) as resp:  # noqa: S310
                    resp.read()
                    record(
                        True,
                        resp.headers.get("X-Served-By", "?"),
                        resp.headers.get("X-App-Version", "?"),
                        None,
                        time.time() - t0,
                    )
            except urllib.error.HTTPError as exc:
                record(False, None, None, f"HTTP {exc.code}", None)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, truncated
                record(False, None, None, type(exc).__name__ + ": " + str(getattr(exc, "reason", exc))[:80], None)
            if args.interval > 0:
                time.sleep(args.interval)

    threads = [threading.Thread(target=worker, daemon=True) for _worker in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    summary = {
        "url": args.url,
        "requests": state["ok"] + state["failed"],
        "ok": state["ok"],
        "failed": state["failed"],
        "errors": state["errors"],
        "seconds": round(elapsed, 2),
        "rps": round((state["ok"] + state["failed"]) / elapsed, 1) if elapsed else None,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p99": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
            "max": round(max(latencies) * 1000, 1) if latencies else None,
        },
        "by_host": state["by_host"],
        "by_version": state["by_version"],
        "versions_seen_per_host": state["versions"],
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
