"""What the agents share: atomic files, JSON state, textfile metrics, systemd notifications."""

import os
import socket
import stat

import pytest

from webinfra_agents.backup import archive as bk
from webinfra_agents.kit import daemon, files, metrics


def test_an_atomic_write_has_its_mode_from_the_start_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "secret.json"
    files.write_atomic(str(path), '{"password": "x"}\n', 0o600)
    assert path.read_text() == '{"password": "x"}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    files.write_atomic(str(path), "new\n", 0o640)
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["secret.json"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "state"
    path.write_text("old\n")

    def broken(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(str(path), "new\n")
    assert path.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["state"]


def test_read_json_gives_the_default_when_there_is_no_file(tmp_path):
    assert files.read_json(str(tmp_path / "none.json")) == {}
    assert files.read_json(str(tmp_path / "none.json"), []) == []
    (tmp_path / "s.json").write_text('{"a": 1}')
    assert files.read_json(str(tmp_path / "s.json")) == {"a": 1}


def test_metrics_text():
    text = metrics.metrics_text(
        {
            "webinfra_backup_count": {'kind="full"': 1, 'kind="incremental"': 2},
            "webinfra_backup_last_run_success": True,
            "webinfra_backup_last_size_bytes": 12.0,
            "webinfra_backup_last_duration_seconds": None,
        },
        bk.METRICS_HELP,
    )
    assert 'webinfra_backup_count{kind="full"} 1' in text and "webinfra_backup_last_run_success 1" in text
    assert "webinfra_backup_last_size_bytes 12\n" in text and "duration" not in text
    assert "# HELP webinfra_backup_count Backups in the repository." in text
    with pytest.raises(KeyError):
        metrics.metrics_text({"webinfra_unknown": 1}, bk.METRICS_HELP)


def test_a_textfile_is_written_whole_in_a_directory_it_creates(tmp_path):
    path = tmp_path / "textfile" / "webinfra_backup.prom"
    metrics.write_textfile(str(path), {"webinfra_backup_bytes_total": 5}, bk.METRICS_HELP)
    assert path.read_text().endswith("webinfra_backup_bytes_total 5\n")
    assert sorted(os.listdir(path.parent)) == ["webinfra_backup.prom"]


def test_sd_notify_sends_to_systemd_and_is_silent_outside_it(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    daemon.sd_notify("READY=1")  # no systemd: nothing happens
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        daemon.sd_notify("WATCHDOG=1")
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()
