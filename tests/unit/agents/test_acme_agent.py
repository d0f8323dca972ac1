"""The ACME agent: its decisions with real certificates (openssl), a fake lego, HAProxy and SSH."""

from __future__ import annotations

import datetime
import io
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webinfra_agents.acme import agent

NAMES = ["www.example.test", "example.test"]


def make_cert(tmp_path: Path, names, days=30, tag="a") -> tuple[str, str]:
    """A self-signed EC certificate and its key (PEM) for `names` (days < 0: expired that long ago)."""
    if days < 0:
        return expired_cert(names, days)
    key, crt = tmp_path / f"{tag}.key", tmp_path / f"{tag}.crt"
    san = ",".join(f"DNS:{n}" for n in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        + ["-keyout", str(key), "-out", str(crt), "-days", str(days), "-subj", f"/CN={names[0]}"]
        + ["-addext", f"subjectAltName={san}"],
        check=True,
        capture_output=True,
    )
    return crt.read_text(), key.read_text()


def expired_cert(names, days) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days - 30))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


class FakeHost(agent.Host):
    """Real openssl and files under tmp_path; lego, haproxy, systemctl and ssh recorded and scripted."""

    def __init__(self, tmp_path, issue=None, haproxy_ok=True, runtime_answers=None, peer_answers=None):
        self.tmp = tmp_path
        self.calls = []
        self.issue = issue  # (crt, key) lego writes on run/renew; None: lego writes nothing
        self.haproxy_ok = haproxy_ok
        self.runtime_calls = []
        self.runtime_answers = list(runtime_answers or [])
        self.peer_answers = dict(peer_answers or {})
        self.cfg = None

    def run(self, argv, stdin=None, env=None, check=True):
        self.calls.append((argv, env))
        if argv[0] == "openssl":
            return super().run(argv, stdin=stdin, env=env, check=check)
        if argv[0] == "lego":
            action = "run" if argv[-1] == "run" else "renew"
            days = int(argv[argv.index("--days") + 1]) if action == "renew" else None
            if self.issue and (action == "run" or days == agent.FORCE_DAYS):
                crt_path, key_path = agent.cert_paths(self.cfg)
                Path(crt_path).parent.mkdir(parents=True, exist_ok=True)
                Path(crt_path).write_text(self.issue[0])
                Path(key_path).write_text(self.issue[1])
            return subprocess.CompletedProcess(argv, 0, "", "")
        if argv[0] == "haproxy":
            return subprocess.CompletedProcess(argv, 0 if self.haproxy_ok else 1, "", "" if self.haproxy_ok else "bad")
        if argv[0] == "systemctl":
            return subprocess.CompletedProcess(argv, 0, "", "")
        if argv[0] == "ssh":
            peer = argv[-2].split("@", 1)[1]
            answer = self.peer_answers.get(peer, {"installed": True})
            rc = 1 if "error" in answer else 0
            return subprocess.CompletedProcess(argv, rc, json.dumps(answer) + "\n", "")
        raise AssertionError(f"unexpected command {argv}")

    def runtime(self, socket_path, line):
        self.runtime_calls.append(line)
        if self.runtime_answers:
            return self.runtime_answers.pop(0)
        return "Transaction created for certificate x!" if line.startswith("set") else "Success!"


@pytest.fixture
def cfg(tmp_path):
    (tmp_path / "tls").mkdir()
    return {
        "server": "https://ca.test:14000/dir",
        "email": "ops@example.test",
        "domains": NAMES,
        "key_type": "ec256",
        "path": str(tmp_path / "lego"),
        "http_listen": "10.0.0.2:8402",
        "ca_file": "/etc/webinfra/acme-ca.pem",
        "renew_days": 30,
        "site_pem": str(tmp_path / "tls" / "site.pem"),
        "haproxy_cfg": "/etc/haproxy/haproxy.cfg",
        "socket": "/run/haproxy/admin.sock",
        "peers": [{"name": "lb-02", "address": "10.0.0.3"}],
        "ssh_key": "/etc/webinfra/acme/id_ed25519",
        "known_hosts": "/etc/webinfra/acme/known_hosts",
        "lego": "lego",
    }


def host_for(tmp_path, cfg, **kw):
    host = FakeHost(tmp_path, **kw)
    host.cfg = cfg
    return host


def test_lego_command_for_a_new_certificate_and_for_a_renewal(cfg):
    run = agent.lego_command(cfg, "run")
    assert run[-1] == "run" and run.count("--domains") == 2
    assert run[run.index("--http.port") + 1] == "10.0.0.2:8402" and "--accept-tos" in run
    renew = agent.lego_command(cfg, "renew")
    assert renew[-4:] == ["renew", "--days", "30", "--no-random-sleep"]
    assert agent.lego_command(cfg, "renew", force=True)[-2] == str(agent.FORCE_DAYS)
    assert agent.lego_env(cfg, base={})["LEGO_CA_CERTIFICATES"] == cfg["ca_file"]
    assert "LEGO_CA_CERTIFICATES" not in agent.lego_env({**cfg, "ca_file": ""}, base={})


def test_plan_asks_for_a_new_certificate_when_the_names_change():
    assert agent.plan(None, NAMES) == "run"
    assert agent.plan(["www.example.test"], NAMES) == "run"
    assert agent.plan(sorted(NAMES), NAMES) == "renew"
    assert agent.plan(["*.example.test", "example.test"], NAMES) == "renew"
    assert agent.uncovered(["*.example.test"], ["a.b.example.test"]) == ["a.b.example.test"]


def test_pem_helpers(tmp_path):
    crt, key = make_cert(tmp_path, NAMES)
    certs, found_key = agent.split_bundle(crt + "\n\n" + key)
    assert len(certs) == 1 and "PRIVATE KEY" in found_key
    assert "\n\n" not in agent.bundle(certs, found_key)
    expected = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=crt, capture_output=True, text=True, check=True
    ).stdout
    assert agent.fingerprint(crt) == expected.strip().split("=", 1)[1]
    with pytest.raises(agent.AcmeError, match="exactly one private key"):
        agent.split_bundle(crt)
    with pytest.raises(agent.AcmeError, match="no certificate"):
        agent.split_bundle(key)
    assert agent.parse_san("X509v3 Subject Alternative Name:\n    DNS:b.test, DNS:a.test, IP Address:1.2.3.4") == [
        "a.test",
        "b.test",
    ]


def test_first_ensure_issues_installs_updates_haproxy_at_run_time_and_pushes_to_peers(tmp_path, cfg):
    crt, key = make_cert(tmp_path, NAMES)
    host = host_for(tmp_path, cfg, issue=(crt, key))
    result = agent.ensure(host, cfg)
    assert result["action"] == "run" and result["renewed"] and result["installed"] and result["changed"]
    assert result["peers"] == {"lb-02": {"installed": True}} and "error" not in result
    assert Path(cfg["site_pem"]).read_text() == crt + key
    assert oct(Path(cfg["site_pem"]).stat().st_mode & 0o777) == "0o600"
    assert host.runtime_calls[0].startswith(f"set ssl cert {cfg['site_pem']} <<\n-----BEGIN CERTIFICATE-----")
    assert host.runtime_calls[1] == f"commit ssl cert {cfg['site_pem']}"
    assert not any(argv[:2] == ["systemctl", "reload"] for argv, _env in host.calls)
    ssh = next(argv for argv, _env in host.calls if argv[0] == "ssh")
    assert "root@10.0.0.3" in ssh and "StrictHostKeyChecking=yes" in ssh
    lego_env = next(env for argv, env in host.calls if argv[0] == "lego")
    assert lego_env["LEGO_CA_CERTIFICATES"] == cfg["ca_file"]


def test_a_second_ensure_renews_nothing_and_changes_nothing(tmp_path, cfg):
    crt, key = make_cert(tmp_path, NAMES)
    host = host_for(tmp_path, cfg, issue=(crt, key), peer_answers={"10.0.0.3": {"installed": False}})
    agent.ensure(host, cfg)
    host.runtime_calls.clear()
    result = agent.ensure(host, cfg)
    assert result["action"] == "renew" and not result["renewed"] and not result["installed"]
    assert not result["changed"] and host.runtime_calls == []


def test_forced_renewal_installs_the_new_certificate(tmp_path, cfg):
    first = make_cert(tmp_path, NAMES, tag="first")
    host = host_for(tmp_path, cfg, issue=first)
    agent.ensure(host, cfg)
    host.issue = make_cert(tmp_path, NAMES, tag="second")
    result = agent.ensure(host, cfg, force=True)
    assert result["renewed"] and result["installed"] and result["fingerprint"] == agent.fingerprint(host.issue[0])
    assert Path(cfg["site_pem"]).read_text() == host.issue[0] + host.issue[1]


def test_a_refused_configuration_puts_the_old_certificate_back(tmp_path, cfg):
    old = "old bundle\n"
    Path(cfg["site_pem"]).write_text(old)
    crt, key = make_cert(tmp_path, NAMES)
    host = host_for(tmp_path, cfg, issue=(crt, key), haproxy_ok=False)
    with pytest.raises(agent.AcmeError, match="old one is back in place"):
        agent.ensure(host, cfg)
    assert Path(cfg["site_pem"]).read_text() == old and host.runtime_calls == []


@pytest.mark.parametrize(
    "names, days, message",
    [
        (["www.example.test"], 30, "does not cover example.test"),
        (NAMES, -1, "has expired"),
    ],
)
def test_a_bundle_that_does_not_fit_is_refused_before_anything_changes(tmp_path, cfg, names, days, message):
    crt, key = make_cert(tmp_path, names, days=days)
    host = host_for(tmp_path, cfg)
    with pytest.raises(agent.AcmeError, match=message):
        agent.receive(host, cfg, crt + key)
    assert not Path(cfg["site_pem"]).exists()


def test_a_key_of_another_certificate_is_refused(tmp_path, cfg):
    crt, _key = make_cert(tmp_path, NAMES, tag="one")
    _crt, other_key = make_cert(tmp_path, NAMES, tag="two")
    with pytest.raises(agent.AcmeError, match="does not match its private key"):
        agent.receive(host_for(tmp_path, cfg), cfg, crt + other_key)


def test_a_failed_runtime_update_falls_back_to_a_reload(tmp_path, cfg):
    crt, key = make_cert(tmp_path, NAMES)
    host = host_for(tmp_path, cfg, runtime_answers=["Unknown command\n"])
    assert agent.receive(host, cfg, crt + key)["installed"]
    assert any(argv == ["systemctl", "reload", "haproxy"] for argv, _env in host.calls)


def test_a_peer_that_fails_is_reported_and_fails_the_run(tmp_path, cfg):
    crt, key = make_cert(tmp_path, NAMES)
    host = host_for(tmp_path, cfg, issue=(crt, key), peer_answers={"10.0.0.3": {"error": "Permission denied"}})
    result = agent.ensure(host, cfg)
    assert result["installed"] and "lb-02: Permission denied" in result["error"]


def test_main_prints_json_and_exits_non_zero_on_errors(tmp_path, cfg, capsys):
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(cfg))
    crt, key = make_cert(tmp_path, NAMES)
    host = host_for(tmp_path, cfg)
    assert agent.main(["receive", str(path)], host=host, stdin=io.StringIO(crt + key)) == 0
    assert json.loads(capsys.readouterr().out)["installed"] is True
    assert agent.main(["status", str(path)], host=host) == 0
    assert json.loads(capsys.readouterr().out)["names"] == sorted(NAMES)
    assert agent.main(["receive", str(path)], host=host, stdin=io.StringIO("x" * (agent.MAX_PEM + 1))) == 1
    assert "not a certificate bundle" in json.loads(capsys.readouterr().out)["error"]
    path.write_text(json.dumps({**cfg, "server": ""}))
    assert agent.main(["status", str(path)], host=host) == 1
    assert "'server' is missing" in json.loads(capsys.readouterr().out)["error"]
