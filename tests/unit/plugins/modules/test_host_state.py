"""The host_state module: real paths, accounts and directories of the test machine; systemctl's
output is fed in (the unit's parsing is the filter's, tested in test_units.py too)."""

import os
import pwd

from ansible.module_utils import basic

from ansible_collections.webinfra.distributed.plugins.module_utils.host_state import parse_show, read_state
from ansible_collections.webinfra.distributed.plugins.modules import host_state

SHOW = """Id=haproxy.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled

Id=webinfra-backup.timer
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=disabled
"""


def test_units_read_ready_or_not_and_unknown_ones_are_not_found():
    states = parse_show(SHOW, ["haproxy", "webinfra-backup.timer", "nosuch.service"])
    assert states["haproxy"] == {
        "load": "loaded",
        "active": "active",
        "sub": "running",
        "enabled": "enabled",
        "running": True,
        "ready": True,
    }
    assert states["webinfra-backup.timer"]["ready"] is False
    assert states["nosuch"] == {
        "load": "not-found",
        "active": "inactive",
        "sub": "",
        "enabled": "",
        "running": False,
        "ready": False,
    }


def test_an_alias_reads_as_the_unit_it_names():
    # `systemctl show mysql` answers with Id=mariadb.service, in the order asked.
    states = parse_show(SHOW.replace("haproxy.service", "mariadb.service"), ["mysql", "webinfra-backup.timer"])
    assert states["mysql"]["ready"] is True and states["webinfra-backup.timer"]["ready"] is False


def test_one_systemctl_call_for_every_unit_and_the_rest_read_in_process(tmp_path):
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, SHOW, ""

    (tmp_path / "releases" / "1.0").mkdir(parents=True)
    (tmp_path / "releases" / "2.0").mkdir()
    (tmp_path / "releases" / "note.txt").write_text("not a release")
    os.utime(tmp_path / "releases" / "1.0", (1, 1))
    os.symlink("releases/2.0", tmp_path / "current")
    me = pwd.getpwuid(os.getuid()).pw_name
    state = read_state(
        run,
        "/bin/systemctl",
        units=["haproxy", "webinfra-backup.timer"],
        users=[me, "no-such-user-here"],
        groups=["no-such-group-here"],
        paths=[str(tmp_path / "current"), str(tmp_path / "missing")],
        dirs=[str(tmp_path / "releases"), str(tmp_path / "nothing")],
    )
    assert calls == [
        [
            "/bin/systemctl",
            "show",
            "--property=Id,LoadState,ActiveState,SubState,UnitFileState",
            "--",
            "haproxy",
            "webinfra-backup.timer",
        ]
    ]
    assert state["units_not_ready"] == ["webinfra-backup.timer"]
    assert list(state["users"]) == [me] and state["users"][me]["uid"] == os.getuid()
    assert state["groups"] == {}
    link = state["paths"][str(tmp_path / "current")]
    assert link["exists"] and link["type"] == "link" and link["target"] == "releases/2.0"
    assert link["lnk_source"] == str(tmp_path / "releases" / "2.0")
    assert state["paths"][str(tmp_path / "missing")] == {"exists": False}
    assert [e["name"] for e in state["dirs"][str(tmp_path / "releases")]] == ["2.0", "1.0"]
    assert state["dirs"][str(tmp_path / "nothing")] == []
    assert state["cpus"] == os.cpu_count()


def test_no_units_no_systemctl_call():
    def run(argv):
        raise AssertionError("systemctl called without units")

    assert read_state(run, None)["units"] == {}


def test_module_reads_and_never_changes(run_module, tmp_path, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/bin/systemctl")
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: (0, SHOW, ""))
    (tmp_path / "f").write_text("x")
    os.chmod(tmp_path / "f", 0o640)
    outcome, result = run_module(
        host_state, {"units": ["haproxy"], "paths": [str(tmp_path / "f")], "_ansible_check_mode": True}
    )
    assert outcome == "exit" and result["changed"] is False
    assert result["units_not_ready"] == [] and result["paths"][str(tmp_path / "f")]["mode"] == "0640"


def test_module_fails_with_systemctl_s_message(run_module, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/bin/systemctl")
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, argv, **kw: (1, "", "Failed to connect to bus")
    )
    outcome, result = run_module(host_state, {"units": ["haproxy"]})
    assert outcome == "fail" and result["msg"] == "systemctl show failed (rc 1): Failed to connect to bus"
