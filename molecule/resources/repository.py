"""The backup repository on a scenario's backup host, as the tests use it: the stored backups,
one backup now, a restore drill now."""

import json
import time

from labhosts import host

REPO = "/var/backups/webinfra"
DRILL_METRICS = "/var/lib/prometheus/node-exporter/webinfra_restore_drill.prom"
READ_BACKUPS = (
    "import glob, json; print(json.dumps([json.load(open(p)) for p in sorted(glob.glob("
    f"'{REPO}/base/*/meta.json')) if '.partial' not in p]))"
)


def backups(backup_host):
    """Every complete backup's meta.json, oldest first."""
    return json.loads(host(backup_host).check_output(f'python3 -c "{READ_BACKUPS}"') or "[]")


def take_backup(backup_host):
    """One backup now (systemd waits for a running one to end first); its meta."""
    before = {b["id"] for b in backups(backup_host)}
    started = time.time()
    result = host(backup_host).run("systemctl start webinfra-backup.service")
    assert result.rc == 0, host(backup_host).run("journalctl -u webinfra-backup -n 30 --no-pager").stdout
    new = [b for b in backups(backup_host) if b["id"] not in before]
    assert new, "no new backup"
    meta = new[-1]
    print(
        f"\n{meta['kind']} backup {meta['id']} from {meta['source']}: {meta['size']} bytes in {meta['duration']} s"
        f" ({time.time() - started:.1f} s with the service start)"
    )
    return meta


def drill(backup_host):
    """Run the restore drill now; (exit status, drill.json's last result, the metrics file)."""
    rc = host(backup_host).run("systemctl start webinfra-restore-drill.service").rc
    state = json.loads(host(backup_host).file(f"{REPO}/drill.json").content_string)
    metrics = host(backup_host).file(DRILL_METRICS).content_string
    return rc, state["last"], metrics
