"""Test helpers shared by the Molecule scenarios' testinfra suites.

Hosts are reached with `podman exec` (testinfra's podman backend), which is ~10x faster than
going through Ansible for every command. Container names follow tools/lab.py:
"<webinfra_lab_name>-<inventory hostname>".
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from pathlib import Path

import testinfra

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))


def inventory_dir() -> str:
    return str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)


@functools.lru_cache(maxsize=1)
def inventory() -> dict:
    # Not into ANSIBLE_LOG_PATH: the dump holds the inventory's (test) passwords.
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_LOG_PATH"}
    out = subprocess.run(
        ["ansible-inventory", "-i", inventory_dir(), "--list"], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out)


def groups() -> dict[str, list[str]]:
    data = inventory()
    return {name: sorted(v.get("hosts", [])) for name, v in data.items() if isinstance(v, dict) and name != "_meta"}


def hostvars(name: str) -> dict:
    return inventory()["_meta"]["hostvars"][name]


@functools.cache
def host(name: str):
    # The container (tools/lab.py names it "<lab>-<host>"); Ansible itself uses SSH.
    return testinfra.get_host(f"podman://{hostvars(name)['webinfra_lab_name']}-{name}")


HTTP_CLIENT = """
import json, ssl, sys, urllib.error, urllib.request
url, headers, data, cadata = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
req = urllib.request.Request(url, headers=headers, data=data.encode() if data else None)
context = ssl.create_default_context(cadata=cadata) if cadata else None
try:
    r = urllib.request.urlopen(req, timeout=10, context=context)
except urllib.error.HTTPError as e:
    r = e
out = {"status": r.status, "headers": {k.lower(): v for k, v in r.headers.items()}, "body": r.read().decode()}
print(json.dumps(out))
"""


def ca_certificate() -> str:
    """The scenario's internal CA certificate (PEM), issued by the pki role on the controller."""
    path = Path(inventory_dir()) / ".pki" / "ca.crt"
    return path.read_text() if path.exists() else ""


def http_get(client, url: str, headers: dict | None = None, data: str = "") -> dict:
    """Request `url` from inside host `client` (POST when `data` is given).

    HTTPS is verified against the scenario's internal CA. Returns status, headers (lower-case
    names) and body.
    """
    cmd = client.run("python3 -c %s %s %s %s %s", HTTP_CLIENT, url, json.dumps(headers or {}), data, ca_certificate())
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def http_json(client, url: str, payload: dict | None = None) -> tuple[int, dict]:
    """(status, decoded JSON body) of a GET, or of a POST of `payload` as JSON."""
    data = json.dumps(payload) if payload is not None else ""
    resp = http_get(client, url, {"Content-Type": "application/json"} if data else {}, data)
    return resp["status"], json.loads(resp["body"])


def haproxy_stat(lb) -> list[dict]:
    out = lb.check_output("echo 'show stat' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock")
    lines = out.splitlines()
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]


def wait_for(predicate, timeout: float = 30, interval: float = 1):
    deadline = time.time() + timeout
    while True:
        result = predicate()
        if result or time.time() > deadline:
            return result
        time.sleep(interval)


def run_playbook(playbook: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", inventory_dir(), str(PROJECT / playbook), *args],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
    )


def playbook_digest(proc: subprocess.CompletedProcess, limit: int = 6000) -> str:
    """What an assertion on a playbook run should show: each changed or failed result under its
    task's name (the default callback's output), then the recap and stderr's end."""
    lines, task = [], ""
    for line in proc.stdout.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.rstrip(" *")
        elif line.startswith(("changed: [", "fatal: [", "failed: [")):
            lines.append(f"{task}\n    {line[:800]}")
    recap = proc.stdout.split("PLAY RECAP", 1)[1] if "PLAY RECAP" in proc.stdout else proc.stdout[-2000:]
    text = "\n".join(lines) + "\nPLAY RECAP" + recap + "\nstderr: " + proc.stderr[-1500:]
    return text[-limit:]


def run_module(target: str, module: str, args: dict | None = None) -> dict:
    """Run an Ansible module on `target` (ad hoc) and return its result."""
    cmd = ["ansible", "-i", inventory_dir(), target, "-m", module]
    if args:
        cmd += ["-a", json.dumps(args)]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    data = json.loads(proc.stdout)
    return data["plays"][0]["tasks"][0]["hosts"][target]


def sql(name: str, statement: str) -> str:
    """Run SQL as root through the socket on host `name`; tab-separated rows without headers."""
    return host(name).check_output("mariadb -N -B -e %s", statement)
