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
CAP_DAC_READ_SEARCH, CAP_KILL = 1 << 2, 1 << 5
# unit: (its system user, the capabilities it keeps)
AGENT_UNITS = {
    "webinfra-ha-agent": ("webinfra-ha", CAP_DAC_READ_SEARCH | CAP_KILL),
    "webinfra-backup-agent": ("webinfra-backup", CAP_DAC_READ_SEARCH),
}


@pytest.mark.parametrize(("unit", "name"), SANDBOXED)
def test_the_network_facing_agents_run_as_their_own_users_in_a_sandbox(unit, name):
    """Not root: each agent runs as a system user of its own, keeps only the capabilities it
    uses (reading root's files; the HA agent also signalling the database server), on a file
    system that is read-only but for its own directories, with no new privileges."""
    user, caps = AGENT_UNITS[unit]
    h = host(name)
    pid = h.check_output(f"systemctl show -p MainPID --value {unit}").strip()
    assert pid not in ("", "0"), unit
    status = h.check_output(f"cat /proc/{pid}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = h.check_output(f"id -u {user}").strip()
    assert fields["Uid"].split() == [uid] * 4 and uid != "0", fields["Uid"]
    assert int(fields["CapBnd"].strip(), 16) == caps, fields["CapBnd"]
    assert int(fields["CapEff"].strip(), 16) == caps, fields["CapEff"]
    assert fields["NoNewPrivs"].strip() == "1"
    # Their view of / and /etc is read-only.
    mounts = h.check_output(f"cat /proc/{pid}/mountinfo")
    etc = [line for line in mounts.splitlines() if line.split()[4] in ("/", "/etc")]
    assert etc and all("ro" in line.split()[5].split(",") for line in etc), etc


def _grants(h, account):
    """{object: set of privileges} from SHOW GRANTS, and whether the account is unix_socket's."""
    rows = h.check_output("mariadb -NBe %s", f"SHOW GRANTS FOR `{account}`@localhost").splitlines()
    out = {}
    for row in rows:
        match = re.match(r"GRANT (.+) ON (\S+) TO ", row)
        out[match.group(2)] = {p.strip() for p in match.group(1).split(",")}
    return out, all("IDENTIFIED VIA unix_socket" in row for row in rows if " ON *.* " in row)


@pytest.mark.parametrize("name", DBS)
def test_each_agent_has_a_database_account_of_only_what_it_does(name):
    """Their own MariaDB accounts through unix_socket (no password anywhere), not root's; what
    they must not do is refused by the server, as the agent's own system user."""
    h = host(name)
    ha, socket_only = _grants(h, "webinfra-ha")
    assert socket_only
    assert ha == {
        "*.*": {
            "RELOAD",
            "PROCESS",
            "BINLOG MONITOR",
            "CONNECTION ADMIN",
            "READ_ONLY ADMIN",
            "REPLICATION SLAVE ADMIN",
            "REPLICATION MASTER ADMIN",
            "BINLOG ADMIN",
            "BINLOG REPLAY",
            "SLAVE MONITOR",
        },
        "`webapp`.*": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "`webinfra_ha_nudge`.*": {"DROP"},
    }, ha
    backup, socket_only = _grants(h, "webinfra-backup")
    assert socket_only and backup == {"*.*": {"SLAVE MONITOR"}}, backup

    def as_user(user, statement):
        return h.run("runuser -u %s -- mariadb -NBe %s", user, statement)

    assert as_user("webinfra-ha", "SELECT CURRENT_USER()").stdout.strip() == "webinfra-ha@localhost"
    assert as_user("webinfra-backup", "SELECT CURRENT_USER()").stdout.strip() == "webinfra-backup@localhost"
    for statement in (
        "CREATE USER intruder@localhost",
        "UPDATE mysql.global_priv SET priv = '{}' WHERE User = 'root'",
        "SET GLOBAL general_log_file = '/tmp/x'",
        "SHUTDOWN",
    ):
        out = as_user("webinfra-ha", statement)
        assert out.rc != 0 and "denied" in out.stderr.lower(), (statement, out.stdout, out.stderr)
    for statement in (
        "SELECT COUNT(*) FROM mysql.global_priv",
        "SELECT COUNT(*) FROM webapp.notes",
        "SET GLOBAL read_only = 0",
    ):
        out = as_user("webinfra-backup", statement)
        assert out.rc != 0 and "denied" in out.stderr.lower(), (statement, out.stdout, out.stderr)


@pytest.mark.parametrize("name", DBS)
def test_mariadb_backup_runs_as_the_mysql_user_for_the_agent_alone(name):
    """The backup agent asks webinfra-backup-stream@.service (the mysql user's, no capabilities,
    the data directory read-only) over a socket only the agent's user may open; it takes an LSN
    and nothing else."""
    h = host(name)
    sock = h.file("/run/webinfra-backup-stream.sock")
    assert sock.is_socket and (sock.user, sock.group, sock.mode) == ("webinfra-backup", "webinfra-backup", 0o600)
    assert h.service("webinfra-backup-stream.socket").is_running
    unit = "/etc/systemd/system/webinfra-backup-stream@.service"
    settings = h.check_output("systemctl cat webinfra-backup-stream@.service")
    assert h.file(unit).exists and "User=mysql" in settings and "ProtectSystem=strict" in settings
    assert "CapabilityBoundingSet=\n" in settings + "\n"
    probe = (
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/webinfra-backup-stream.sock'); "
        "s.sendall(b'0\\n')"
    )
    refused = h.run("runuser -u webapp -- python3 -c %s", probe)
    assert refused.rc != 0 and "PermissionError" in refused.stderr, refused.stderr
    # Anything but an LSN: the helper answers with its refusal and runs no mariadb-backup.
    bad = "s.sendall(b'--incremental-lsn=1\\n'); s.shutdown(socket.SHUT_WR); print(s.makefile('rb').read()[-80:])"
    out = h.run("runuser -u webinfra-backup -- python3 -c %s", probe.replace("s.sendall(b'0\\n')", bad))
    assert out.rc == 0 and "not an LSN" in out.stdout, (out.stdout, out.stderr)


@pytest.mark.parametrize("name", groups()["backups"])
def test_the_repository_services_keep_root_without_its_powers(name):
    """The backup runs and the archive stay root (the repository is root's) with no capability at
    all, writing only the repository and the metrics directory; the drill keeps the few it needs
    to hand the restored files to webinfra-drill. The archive runs so, and a backup just taken so
    succeeded (its metrics say when)."""
    h = host(name)

    def prop(unit, key):
        return h.check_output(f"systemctl show -p {key} --value {unit}").strip()

    for unit in ("webinfra-backup.service", "webinfra-binlog-archive.service"):
        assert prop(unit, "CapabilityBoundingSet") == "", unit
        assert prop(unit, "ProtectSystem") == "strict" and prop(unit, "NoNewPrivileges") == "yes", unit
    drill = set(prop("webinfra-restore-drill.service", "CapabilityBoundingSet").split())
    assert drill == {"cap_chown", "cap_dac_override", "cap_fowner", "cap_kill", "cap_setgid", "cap_setuid"}, drill
    pid = prop("webinfra-binlog-archive.service", "MainPID")
    assert pid not in ("", "0")
    status = dict(line.split(":", 1) for line in h.check_output(f"cat /proc/{pid}/status").splitlines() if ":" in line)
    assert int(status["CapEff"].strip(), 16) == 0 and int(status["CapBnd"].strip(), 16) == 0
    out = h.run("systemctl start webinfra-backup.service")
    assert out.rc == 0, out.stderr
    assert prop("webinfra-backup.service", "Result") == "success"
