"""The files module on real files in a temporary directory (owner/group left as they are)."""

import os
import stat

import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.file_set import content_changes, normalise
from ansible_collections.webinfra.distributed.plugins.modules import files


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_directory_then_files_with_their_modes(run_module, tmp_path):
    tls = tmp_path / "tls"
    spec = [
        {"path": str(tls), "state": "directory", "mode": "0750"},
        {"path": str(tls / "server.pem"), "content": "CERT\n"},
        {"path": str(tls / "server.key"), "content": "KEY\n", "mode": "0640"},
    ]
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and result["changed"]
    assert result["changed_paths"] == [str(tls), str(tls / "server.pem"), str(tls / "server.key")]
    assert _mode(tls) == 0o750
    assert (tls / "server.key").read_text() == "KEY\n" and _mode(tls / "server.key") == 0o640
    assert _mode(tls / "server.pem") == 0o644
    assert not [p for p in os.listdir(tls) if p.startswith(".webinfra-")]
    # Second run: nothing to do.
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and not result["changed"] and result["changed_paths"] == []


def test_changes_only_what_differs_and_shows_the_diff(run_module, tmp_path):
    (tmp_path / "a").write_text("old\n")
    (tmp_path / "b").write_text("same\n")
    os.chmod(tmp_path / "a", 0o644)
    os.chmod(tmp_path / "b", 0o600)
    spec = [{"path": str(tmp_path / "a"), "content": "new\n"}, {"path": str(tmp_path / "b"), "content": "same\n"}]
    outcome, result = run_module(files, {"files": spec})
    assert result["changed_paths"] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert result["diff"] == [
        {"before_header": str(tmp_path / "a"), "after_header": str(tmp_path / "a"), "before": "old\n", "after": "new\n"}
    ]
    assert (tmp_path / "a").read_text() == "new\n" and _mode(tmp_path / "b") == 0o644


def test_check_mode_reports_and_changes_nothing(run_module, tmp_path):
    (tmp_path / "a").write_text("old\n")
    spec = [
        {"path": str(tmp_path / "d"), "state": "directory"},
        {"path": str(tmp_path / "d" / "f"), "content": "x\n"},
        {"path": str(tmp_path / "a"), "content": "new\n"},
    ]
    outcome, result = run_module(files, {"files": spec, "_ansible_check_mode": True})
    assert outcome == "exit" and result["changed"]
    assert result["changed_paths"] == [str(tmp_path / "d"), str(tmp_path / "d" / "f"), str(tmp_path / "a")]
    assert not (tmp_path / "d").exists() and (tmp_path / "a").read_text() == "old\n"


def test_a_file_in_a_missing_directory_is_refused(run_module, tmp_path):
    outcome, result = run_module(files, {"files": [{"path": str(tmp_path / "no" / "f"), "content": "x"}]})
    assert outcome == "fail" and "list it before the file" in result["msg"]


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{"path": "relative/f", "content": "x"}], "files[0] (relative/f): path must be absolute"),
        ([{"path": "/etc/x"}], "files[0] (/etc/x): a file needs content"),
        ([{"path": "/etc/d", "state": "directory", "content": "x"}], "a directory takes no content"),
        (
            [{"path": "/etc/x", "content": "1"}, {"path": "/etc/x", "content": "2"}],
            "files[1] (/etc/x): the path is listed twice",
        ),
    ],
)
def test_bad_entries_name_the_entry(entries, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        normalise(entries)


def test_content_changes_ignores_directories_and_equal_files(tmp_path):
    (tmp_path / "f").write_text("x")
    entries = normalise([{"path": str(tmp_path), "state": "directory"}, {"path": str(tmp_path / "f"), "content": "x"}])
    assert content_changes(entries) == []
