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
    outcome, result = run_module(files, {"files": spec, "_ansible_diff": True})
    assert result["changed_paths"] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert result["diff"] == [
        {"before_header": str(tmp_path / "a"), "after_header": str(tmp_path / "a"), "before": "old\n", "after": "new\n"}
    ]
    assert (tmp_path / "a").read_text() == "new\n" and _mode(tmp_path / "b") == 0o644


def test_without_diff_mode_the_result_carries_no_content(run_module, tmp_path):
    (tmp_path / "secret").write_text("old-password\n")
    spec = [{"path": str(tmp_path / "secret"), "content": "new-password\n", "mode": "0600"}]
    outcome, result = run_module(files, {"files": spec, "_ansible_diff": False})
    assert outcome == "exit" and result["changed_paths"] == [str(tmp_path / "secret")]
    assert result["diff"] == [] and "password" not in repr(result)


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
        ([{"path": "/etc/d", "state": "directory", "content": "x"}], "a directory entry takes no content"),
        (
            [{"path": "/etc/x", "content": "1"}, {"path": "/etc/x", "content": "2"}],
            "files[1] (/etc/x): the path is listed twice",
        ),
        ([{"path": "/etc/x", "content": "1", "validate": "true"}], "validate is for a file and must contain %s"),
        ([{"path": "/etc/d", "state": "directory", "validate": "t %s"}], "validate is for a file"),
        ([{"path": "/etc/x", "state": "absent", "mode": "0600"}], "an absent entry takes no owner, group or mode"),
        ([{"path": "/etc/d", "state": "directory", "replace": False}], "files[0] (/etc/d): replace is for a file"),
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


def test_replace_false_writes_a_missing_file_and_keeps_an_existing_one(run_module, tmp_path):
    kept, created = tmp_path / "site.pem", tmp_path / "new.pem"
    kept.write_text("renewed by ACME\n")
    kept.chmod(0o644)
    spec = [
        {"path": str(kept), "content": "first version\n", "mode": "0600", "replace": False},
        {"path": str(created), "content": "first version\n", "mode": "0600", "replace": False},
    ]
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and result["changed_paths"] == [str(kept), str(created)]
    assert kept.read_text() == "renewed by ACME\n" and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert created.read_text() == "first version\n"
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and not result["changed"]


# A checker that accepts a file whose content says "good" (grep exits 1 otherwise).
CHECKER = "grep -q good %s"


def test_validate_checks_the_new_content_in_the_target_directory(run_module, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("old good\n")
    # The check finds the file's neighbours: it runs in the target's own directory.
    in_place = "sh -c 'test -f \"$(dirname %s)/app.conf\"'"
    spec = {"path": str(conf), "content": "new good\n", "mode": "0640", "validate": in_place}
    outcome, result = run_module(files, {"files": [spec]})
    assert outcome == "exit" and result["changed_paths"] == [str(conf)], result
    assert conf.read_text() == "new good\n" and _mode(conf) == 0o640


def test_refused_content_leaves_the_file_in_place_and_no_temporary_file(run_module, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("old good\n")
    os.chmod(conf, 0o644)
    outcome, result = run_module(files, {"files": [{"path": str(conf), "content": "broken\n", "validate": CHECKER}]})
    assert outcome == "fail", result
    assert result["msg"].startswith(f"files: {conf}: the new content was refused by 'grep -q good %s' (rc 1)")
    assert conf.read_text() == "old good\n" and _mode(conf) == 0o644
    assert os.listdir(tmp_path) == ["app.conf"]


def test_validate_runs_only_when_the_content_changes_and_never_in_check_mode(run_module, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("same\n")
    # "same" would be refused: unchanged content is not checked again.
    outcome, result = run_module(files, {"files": [{"path": str(conf), "content": "same\n", "validate": CHECKER}]})
    assert outcome == "exit" and not result["changed"]
    args = {"files": [{"path": str(conf), "content": "other\n", "validate": CHECKER}], "_ansible_check_mode": True}
    outcome, result = run_module(files, args)
    assert outcome == "exit" and result["changed_paths"] == [str(conf)] and conf.read_text() == "same\n"


def test_absent_removes_files_and_links_and_refuses_a_directory(run_module, tmp_path):
    (tmp_path / "site").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "site")
    spec = [{"path": str(tmp_path / "link"), "state": "absent"}, {"path": str(tmp_path / "gone"), "state": "absent"}]
    outcome, result = run_module(files, {"files": spec, "_ansible_check_mode": True})
    assert result["changed_paths"] == [str(tmp_path / "link")] and (tmp_path / "link").is_symlink()
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and result["changed_paths"] == [str(tmp_path / "link")]
    assert not (tmp_path / "link").exists() and (tmp_path / "site").exists()
    outcome, result = run_module(files, {"files": [{"path": str(tmp_path), "state": "absent"}]})
    assert outcome == "fail" and "is a directory" in result["msg"]


def test_present_false_removes_the_file_whatever_else_the_entry_says(run_module, tmp_path):
    """One entry for a file only some hosts have: its condition in `present`, its content, owner
    and mode given for the hosts that do (an absent entry with them is still refused)."""
    (tmp_path / "crl.pem").write_text("old list\n")
    spec = [{"path": str(tmp_path / "crl.pem"), "content": "list\n", "mode": "0644", "present": False}]
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and result["changed_paths"] == [str(tmp_path / "crl.pem")]
    assert not (tmp_path / "crl.pem").exists()
    outcome, result = run_module(files, {"files": spec})
    assert outcome == "exit" and not result["changed"]
    spec[0]["present"] = True
    outcome, result = run_module(files, {"files": spec})
    assert (tmp_path / "crl.pem").read_text() == "list\n" and _mode(tmp_path / "crl.pem") == 0o644
    with pytest.raises(ValueError, match="present is for a file"):
        normalise([{"path": str(tmp_path), "state": "directory", "present": False}])
