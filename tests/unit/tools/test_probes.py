"""The probes shared by the benchmarks and the Molecule tests, over a scripted shell."""

import subprocess

import probes


class FakeShell:
    """Answers scripts from a table {(host, script start): (rc, stdout)}; a missing host times out."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def __call__(self, host, script, timeout=None):
        self.calls.append((host, script))
        for (h, start), (rc, out) in self.answers.items():
            if h == host and script.startswith(start):
                return subprocess.CompletedProcess([host], rc, out, "")
        raise subprocess.TimeoutExpired(script, timeout)


def test_the_read_only_sampler_reads_writable_read_only_and_no_answer():
    shell = FakeShell({("db-01", "timeout 1 mariadb"): (0, "0\n"), ("db-02", "timeout 1 mariadb"): (0, "1\n")})
    sampler = probes.ReadOnlySampler(shell, ["db-01", "db-02", "db-03"], interval=0.01)
    assert [sampler.read(h) for h in ("db-01", "db-02", "db-03")] == [True, False, None]
    sampler.samples = [(1.0, {"db-01": True, "db-02": False}), (2.0, {"db-01": True, "db-02": True})]
    assert sampler.double_writable() == [2.0]
    assert sampler.first("db-02", True) == 2.0 and sampler.first("db-01", True, since=1.5) == 2.0
    assert sampler.first("db-01", False) is None


def test_the_sampler_runs_in_its_own_thread_until_the_block_ends():
    shell = FakeShell({("db-01", "timeout 1 mariadb"): (0, "1\n")})
    with probes.ReadOnlySampler(shell, ["db-01"], interval=0.01) as sampler:
        while len(sampler.samples) < 3:
            pass
    count = len(sampler.samples)
    assert count >= 3 and all(seen == {"db-01": False} for _t, seen in sampler.samples)
    assert not sampler.thread.is_alive()


def test_the_vip_holder_the_agent_status_and_haproxy_servers():
    stat = "# pxname,svname,qcur,status\ndb_writer,FRONTEND,0,OPEN\ndb_writer,db-01,0,UP\ndb_writer,db-02,0,DOWN\n"
    shell = FakeShell(
        {
            ("lb-01", "ip -o -4"): (0, "2: eth0    inet 10.0.0.2/24\n"),
            ("lb-02", "ip -o -4"): (0, "2: eth0    inet 10.0.0.3/24\n    inet 10.0.0.250/32\n"),
            ("db-01", "python3 -c"): (0, '{"leader": "db-01"}\n'),
            ("db-02", "python3 -c"): (1, ""),
            ("lb-02", "echo 'show stat'"): (0, stat),
        }
    )
    assert probes.vip_holder(shell, ["lb-01", "lb-02"], "10.0.0.250") == "lb-02"
    assert probes.vip_holder(shell, ["lb-01"], "10.0.0.250") is None
    assert probes.agent_status(shell, "db-01") == {"leader": "db-01"}
    assert probes.agent_status(shell, "db-02") == {} and probes.agent_status(shell, "db-03") == {}
    assert probes.haproxy_servers(shell, "lb-02", "db_writer") == {"db-01": "UP", "db-02": "DOWN"}
    assert probes.Shell("webinfra-lab").container("db-01") == "webinfra-lab-db-01"


def _fake_podman(tmp_path, failures, paused_after_failure=False):
    """A podman whose `pause` fails `failures` times, then works; `inspect` reports the state."""
    count = tmp_path / "count"
    count.write_text("0")
    script = tmp_path / "podman"
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {count})\n"
        'if [ "$1" = pause ]; then\n'
        f"  echo $((n + 1)) > {count}\n"
        f'  if [ "$n" -lt {failures} ]; then echo "runc pause failed: exit status 1" >&2; exit 125; fi\n'
        "  exit 0\n"
        "fi\n"
        f"echo {'paused' if paused_after_failure else 'running'}\n"
    )
    script.chmod(0o755)
    return str(script), count


def test_freeze_tries_again_when_the_freezer_gives_up(tmp_path):
    podman, count = _fake_podman(tmp_path, failures=2)
    assert probes.freeze("c", podman=podman).returncode == 0
    assert count.read_text().strip() == "3"


def test_freeze_reports_the_last_failure_after_its_attempts(tmp_path):
    podman, count = _fake_podman(tmp_path, failures=10)
    proc = probes.freeze("c", attempts=3, podman=podman)
    assert proc.returncode == 125 and "exit status 1" in proc.stderr
    assert count.read_text().strip() == "3"


def test_freeze_accepts_a_container_found_paused(tmp_path):
    podman, count = _fake_podman(tmp_path, failures=10, paused_after_failure=True)
    assert probes.freeze("c", podman=podman).returncode == 0
    assert count.read_text().strip() == "1"
