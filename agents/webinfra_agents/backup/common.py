# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every host role of the backup agent shares: its settings, the incarnation of the data, mutual
TLS between the agents, requests to another agent, and running a command."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import time
from http.client import HTTPSConnection

from webinfra_agents.backup import archive as bk
from webinfra_agents.kit.daemon import log
from webinfra_agents.kit.files import write_atomic
from webinfra_agents.kit.tls import honour_crl

CHUNK = 1024 * 1024
STATUS_TIMEOUT = 5
# A rebuild whose source streams another backup (a scheduled one, another replica's copy: new
# replicas seeded in the same run) waits for it, asking every BUSY_POLL seconds, this long.
BUSY_WAIT = 900
BUSY_POLL = 2
# The archiver's server id towards the primary (a replica with the same id would be cut off).
DEFAULT_ARCHIVER_SERVER_ID = 4000000000
# A restore or a rebuild writes a new id here: backups continue a chain only within one.
INCARNATION_FILE = "/var/lib/webinfra-backup/incarnation"
# Replication state a copied data directory brings from its source (meaningless here).
SOURCE_REPLICATION_FILES = ("master.info", "relay-log.info", "multi-master.info")


def read_incarnation(path=INCARNATION_FILE):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return ""


def new_incarnation(path=INCARNATION_FILE):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    value = "%s-%s" % (bk.backup_id(time.time()), hashlib.sha256(os.urandom(16)).hexdigest()[:8])
    write_atomic(path, value + "\n", 0o600)
    return value


def load_config(path):
    with open(path) as handle:
        return json.load(handle)


# --- TLS ---------------------------------------------------------------------------------------


def server_context(cfg):
    tls = cfg["tls"]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls["ca"])
    ctx.load_cert_chain(tls["cert"], tls["key"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    # Loaded once: the role restarts the agent when the CRL changes.
    return honour_crl(ctx, tls.get("crl"))


def client_context(cfg):
    tls = cfg["tls"]
    ctx = ssl.create_default_context(cafile=tls["ca"])
    ctx.load_cert_chain(tls["cert"], tls["key"])
    return honour_crl(ctx, tls.get("crl"))


def peer_name(cert, attribute="commonName"):
    """The subject's `attribute` of a peer certificate (ssl's getpeercert()), "" without one."""
    for field in (cert or {}).get("subject", ()):
        for key, value in field:
            if key == attribute:
                return value
    return ""


class Busy(bk.BackupError):
    """The source answered 409: it is streaming another backup."""


def get(cfg, address, path, timeout=STATUS_TIMEOUT):
    """The response of another agent (HTTPS, this host's certificate; the peer's is checked
    against the internal CA and its address); an answer other than 200 raises BackupError (Busy
    for 409: a backup is running there)."""
    conn = HTTPSConnection(address, int(cfg["port"]), timeout=timeout, context=client_context(cfg))
    conn.request("GET", path)
    answer = conn.getresponse()
    if answer.status != 200:
        body = answer.read().decode("utf-8", "replace")
        conn.close()
        error = Busy if answer.status == 409 else bk.BackupError
        raise error("%s:%s%s answered %s: %s" % (address, cfg["port"], path, answer.status, body[:300]))
    return answer


def when_free(request, address, wait, poll=BUSY_POLL, clock=time.monotonic, sleep=time.sleep):
    """request() again while its source answers Busy, for at most `wait` seconds (nothing was
    received before a 409: trying again is safe)."""
    deadline = clock() + wait
    told = False
    while True:
        try:
            return request()
        except Busy:
            if clock() + poll > deadline:
                raise bk.BackupError(
                    "%s streamed another backup for over %d s (a scheduled backup, another rebuild): "
                    "try again when it is done" % (address, wait)
                ) from None
            if not told:
                log("%s streams another backup: waiting for it (at most %d s)" % (address, wait))
                told = True
            sleep(poll)


def get_json(cfg, address, path, timeout=STATUS_TIMEOUT):
    with get(cfg, address, path, timeout) as answer:
        return json.loads(answer.read().decode("utf-8"))


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603
    if proc.returncode != 0:
        raise bk.BackupError("%s failed (%d): %s" % (cmd[0], proc.returncode, (proc.stderr or proc.stdout)[-1500:]))
    return proc.stdout
