"""The host agents' artifact on real hosts: the one the controller builds, installed once per host
with a command per agent; each command imports its agent from it and answers --version; the
services run it (no code directory of the old per-agent copies is left)."""

import hashlib
import importlib.util
import re
import tempfile

import pytest
from labhosts import PROJECT, groups, host

DBS = groups()["db_primary"] + groups()["db_replicas"]
AGENT_HOSTS = sorted(set(DBS + groups()["backups"]))
ARTIFACT = "/usr/local/lib/webinfra/webinfra-agents.pyz"
COMMANDS = ("webinfra-ha-agent", "webinfra-backup", "webinfra-acme")


def built():
    """The artifact as the controller builds it from this checkout (plugin_utils/agents.py)."""
    spec = importlib.util.spec_from_file_location("agents", PROJECT / "plugins" / "plugin_utils" / "agents.py")
    agents = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agents)
    return agents.build(tempfile.mkdtemp(prefix="webinfra-agents-test-"), root=PROJECT)


BUILT = built()
VERSION = BUILT.stem.removeprefix("webinfra-agents-")


@pytest.mark.parametrize("name", AGENT_HOSTS)
def test_the_host_runs_the_artifact_the_controller_built(name):
    h = host(name)
    installed = h.file(ARTIFACT)
    assert (installed.user, installed.group, installed.mode) == ("root", "root", 0o644)
    assert installed.sha256sum == hashlib.sha256(BUILT.read_bytes()).hexdigest()
    assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{12}", VERSION)
    for command in COMMANDS:
        out = h.run("/usr/local/sbin/%s --version", command)
        assert out.rc == 0 and out.stdout.strip() == f"{command} {VERSION}", (command, out.stdout, out.stderr)
    for old in ("/usr/local/lib/webinfra-ha", "/usr/local/lib/webinfra-backup", "/usr/local/lib/webinfra-acme"):
        assert not h.file(old).exists, old


@pytest.mark.parametrize("name", DBS)
def test_the_agents_import_on_the_host_and_the_services_run_them(name):
    h = host(name)
    code = "import webinfra_agents.ha.agent, webinfra_agents.backup.agent, webinfra_agents.acme.agent"
    out = h.run("python3 -I -c %s", f"import sys; sys.path.insert(0, {ARTIFACT!r}); {code}")
    assert out.rc == 0, out.stderr
    for unit, command in (("webinfra-ha-agent", "webinfra-ha-agent"), ("webinfra-backup-agent", "webinfra-backup")):
        assert h.service(unit).is_running, unit
        exec_start = h.check_output("systemctl show -p ExecStart --value %s", unit)
        assert f"/usr/local/sbin/{command} " in exec_start, exec_start
        # The running process is the artifact's (python3 -I <artifact> <command> ...).
        pid = h.check_output("systemctl show -p MainPID --value %s", unit).strip()
        cmdline = h.check_output("tr '\\0' ' ' < /proc/%s/cmdline", pid)
        assert ARTIFACT in cmdline and command in cmdline, cmdline


SANDBOXED = [("webinfra-ha-agent", name) for name in DBS] + [("webinfra-backup-agent", name) for name in AGENT_HOSTS]


@pytest.mark.parametrize(("unit", "name"), SANDBOXED)
def test_the_network_facing_agents_run_with_one_capability_and_a_read_only_system(unit, name):
    """Root for MariaDB's unix_socket account (and the HA agent's systemctl), but sandboxed: the
    bounding set is CAP_DAC_READ_SEARCH alone (to read the binary logs, the data directory), the
    file system read-only but for their own directories, no new privileges."""
    h = host(name)
    pid = h.check_output(f"systemctl show -p MainPID --value {unit}").strip()
    assert pid not in ("", "0"), unit
    status = h.check_output(f"cat /proc/{pid}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert int(fields["CapBnd"].strip(), 16) == 1 << 2, fields["CapBnd"]  # CAP_DAC_READ_SEARCH
    assert fields["NoNewPrivs"].strip() == "1"
    # Their view of / and /etc is read-only.
    mounts = h.check_output(f"cat /proc/{pid}/mountinfo")
    etc = [line for line in mounts.splitlines() if line.split()[4] in ("/", "/etc")]
    assert etc and all("ro" in line.split()[5].split(",") for line in etc), etc
