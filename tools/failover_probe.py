"""Straight to every database server, from a web server, with the application's own accounts:
`@@read_only` of each server sampled every 100 ms, and a note written to each one every 100 ms
(the application's writer account, as an application bypassing the writer endpoint would).

Runs on a web server of the lab (it has PyMySQL and the application's environment file, whose
writer account the probe uses) until the stop file appears, then prints one JSON document:
`samples` ({server: [[time, 1 writable | 0 read-only | null no answer], ...]}) and `acked`
({server: [[time, body], ...]}: the direct writes each server acknowledged). The Molecule fault
matrix and `make bench` check that no two servers were writable at once and that every
acknowledged write, through the endpoint or straight, is on the server that leads at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time


def environment(path):
    values = {}
    with open(path) as handle:
        for line in handle:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = json.loads(value) if value.startswith('"') else value
    return values


def connect(env, host, port):
    import pymysql  # noqa: PLC0415 - on the web servers only

    settings = {
        "host": host,
        "port": port,
        "user": env["DB_WRITE_USER"],
        "password": env["DB_WRITE_PASSWORD"],
        "database": env.get("DB_NAME", "webapp"),
        "connect_timeout": 1,
        "read_timeout": 1,
        "write_timeout": 1,
        "autocommit": True,
    }
    if env.get("DB_SSL_CA"):
        settings["ssl"] = {"ca": env["DB_SSL_CA"], "check_hostname": False}
    return pymysql.connect(**settings)


class Server(threading.Thread):
    """One server: a connection that reads read_only, one that writes; reconnected on error."""

    def __init__(self, env, name, address, port, prefix, interval, stop):
        super().__init__(daemon=True)
        self.env, self.name, self.address, self.port = env, name, address, port
        self.prefix, self.interval, self.stop = prefix, interval, stop
        self.samples, self.acked, self.count = [], [], 0
        self.reader = self.writer = None

    def sample(self):
        stamp = time.time()
        try:
            if self.reader is None:
                self.reader = connect(self.env, self.address, self.port)
            with self.reader.cursor() as cur:
                cur.execute("SELECT @@GLOBAL.read_only")
                value = 0 if int(cur.fetchone()[0]) else 1
        except Exception:  # noqa: BLE001 - no answer is a sample too
            self.reader, value = None, None
        self.samples.append([round(stamp, 3), value])

    def write(self):
        self.count += 1
        body = f"{self.prefix}-{self.name}-{self.count}"
        try:
            if self.writer is None:
                self.writer = connect(self.env, self.address, self.port)
            with self.writer.cursor() as cur:
                cur.execute("INSERT INTO notes (body, written_by) VALUES (%s, 'failover-probe')", (body,))
            self.acked.append([round(time.time(), 3), body])
        except Exception:  # noqa: BLE001 - refused (read-only), cut off, killed: not acknowledged
            try:
                if self.writer is not None:
                    self.writer.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass
            self.writer = None

    def run(self):
        while not self.stop.is_set():
            began = time.time()
            self.sample()
            self.write()
            time.sleep(max(0.0, self.interval - (time.time() - began)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--server", action="append", required=True, help="name=address:port, once per server")
    parser.add_argument("--env-file", default="/etc/webapp/environment")
    parser.add_argument("--prefix", default="direct")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--ready-file")
    parser.add_argument("--duration", type=float, default=600)
    args = parser.parse_args(argv)
    env = environment(args.env_file)
    stop = threading.Event()
    servers = []
    for spec in args.server:
        name, _sep, target = spec.partition("=")
        address, _sep, port = target.rpartition(":")
        servers.append(Server(env, name, address, int(port), args.prefix, args.interval, stop))
    for server in servers:
        server.start()
    if args.ready_file:
        open(args.ready_file, "w").close()  # noqa: SIM115
    deadline = time.time() + args.duration
    while time.time() < deadline and not os.path.exists(args.stop_file):
        time.sleep(0.1)
    stop.set()
    for server in servers:
        server.join(5)
    print(json.dumps({"samples": {s.name: s.samples for s in servers}, "acked": {s.name: s.acked for s in servers}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
