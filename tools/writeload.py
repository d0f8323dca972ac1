"""Bounded sequential requests that record every outcome, for failover tests and benchmarks.

GET mode measures availability; POST mode writes notes (body "<prefix>-<n>") and records which
ones the application acknowledged, so a test can check that none of them was lost. Prints one
JSON summary: counts, errors, the longest time without a successful response (seconds without
service) and, for POST, the acknowledged bodies. Standard library only.
"""

import argparse
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request


def main(argv=None):  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", choices=["GET", "POST"], default="GET")
    parser.add_argument("--prefix", default="w")
    parser.add_argument("--interval", type=float, default=0.05, help="pause after each request, per thread")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--cafile")
    parser.add_argument("--ready-file")
    parser.add_argument("--stop-file")
    parser.add_argument("--events-file", help="write every request as a JSON line: start, end, ok, error")
    args = parser.parse_args(argv)

    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    lock = threading.Lock()
    events = []  # (time, ok)
    timeline = []  # (start, end, ok, error)
    acked, errors = [], {}
    counter = {"n": 0}
    deadline = time.time() + args.duration

    def one(number):
        body = f"{args.prefix}-{number}".encode() if args.method == "POST" else None
        request = urllib.request.Request(args.url, data=body, method=args.method)  # noqa: S310 - http(s) only
        if body is not None:
            request.add_header("Content-Type", "text/plain")
        try:
            with urllib.request.urlopen(request, timeout=args.timeout, context=context) as response:  # noqa: S310
                response.read()
                return response.status < 300, None
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}"
        except Exception as exc:  # noqa: BLE001 - every failure is a data point
            return False, type(exc).__name__

    def worker():
        while time.time() < deadline and not (args.stop_file and os.path.exists(args.stop_file)):
            with lock:
                counter["n"] += 1
                number = counter["n"]
            began = time.time()
            ok, error = one(number)
            now = time.time()
            with lock:
                events.append((now, ok))
                timeline.append((began, now, ok, error))
                if ok:
                    if args.method == "POST":
                        acked.append(f"{args.prefix}-{number}")
                    if args.ready_file and not os.path.exists(args.ready_file):
                        open(args.ready_file, "w").close()  # noqa: SIM115
                else:
                    errors[error] = errors.get(error, 0) + 1
            time.sleep(args.interval)

    started = time.time()
    threads = [threading.Thread(target=worker) for index in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events.sort()
    if args.events_file:
        with open(args.events_file, "w", encoding="utf-8") as out:
            for began, ended, ok, error in sorted(timeline):
                out.write(json.dumps({"start": began, "end": ended, "ok": ok, "error": error}) + "\n")
    successes = [t for t, ok in events if ok]
    # The last stretch counts too: a load that ends in failures ended in an outage.
    marks = successes + ([events[-1][0]] if events and successes and events[-1][0] > successes[-1] else [])
    gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    widest = max(range(len(gaps)), key=gaps.__getitem__) if gaps else None
    failures = [t for t, ok in events if not ok]
    print(
        json.dumps(
            {
                "method": args.method,
                "seconds": round(time.time() - started, 2),
                "requests": len(events),
                "ok": len(successes),
                "failed": len(failures),
                "errors": errors,
                "max_gap_s": round(gaps[widest], 2) if gaps else None,
                # When the longest stretch without a success began and ended (epoch seconds).
                "max_gap_at": [marks[widest], marks[widest + 1]] if widest is not None else None,
                "first_failure": failures[0] if failures else None,
                "last_failure": failures[-1] if failures else None,
                "acked": acked,
            }
        )
    )


if __name__ == "__main__":
    main()
