"""The backup agent's HTTPS service on a real socket, with real certificates of a test CA: who it
answers, and that idle or slow clients cannot stop it."""

import datetime
import http.client
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup import service


def _name(common_name, unit=None):
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name(attributes)


def _cert(subject, issuer, key, issuer_key, ca=False, san=None, unit=None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject, unit))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    # The CA's key usage as the pki role issues it: Python 3.13's default context (X.509 strict)
    # refuses a CA certificate without one.
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        builder = builder.add_extension(x509.SubjectAlternativeName(san or [x509.DNSName(subject)]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and certificates for the agent (127.0.0.1), an allowed client and an unknown name."""
    base = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test-ca", "test-ca", ca_key, ca_key, ca=True)
    (base / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {"dir": base, "ca": str(base / "ca.pem"), "ca_key": ca_key}
    # db-02's backup-purpose certificate (OU=backup) and its general one (as MariaDB's key);
    # db-02-stolen: an earlier backup certificate of db-02, revoked.
    for name in ("agent", "db-02", "db-02-general", "db-02-stolen", "intruder"):
        key = ec.generate_private_key(ec.SECP256R1())
        san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if name == "agent" else None
        subject = "db-02" if name.startswith("db-02") else name
        unit = "backup" if name in ("agent", "db-02", "db-02-stolen") else None
        cert = _cert(subject, "test-ca", key, ca_key, san=san, unit=unit)
        out[name + ":serial"] = cert.serial_number
        (base / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (base / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[name] = (str(base / f"{name}.pem"), str(base / f"{name}.key"))
    return out


def _crl(pki, revoked):
    """The CA's revocation list (PEM file) with the serial numbers of `revoked` certificates."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name("test-ca"))
        .last_update(now - datetime.timedelta(minutes=1))
        .next_update(now + datetime.timedelta(days=1))
    )
    for name in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(pki[name + ":serial"]).revocation_date(now).build()
        builder = builder.add_revoked_certificate(entry)
    path = pki["dir"] / "crl.pem"
    path.write_bytes(builder.sign(pki["ca_key"], hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture
def agent(pki, tmp_path, monkeypatch, request):
    """A repository agent on 127.0.0.1 (a free port) that answers db-02 only."""
    repo = tmp_path / "repo"
    (repo / "base" / "20261201T000000Z").mkdir(parents=True)
    (repo / "base" / "20261201T000000Z" / "backup.xb.zst").write_bytes(b"the backup")
    cfg = {
        "name": "agent",
        "listen": "127.0.0.1",
        "port": 0,
        "tls": {"ca": pki["ca"], "cert": pki["agent"][0], "key": pki["agent"][1]},
        "clients": ["db-02"],
        "client_unit": "backup",
        "repository": {"dir": str(repo)},
    }
    revoked = getattr(request, "param", None)
    if revoked is not None:
        cfg["tls"]["crl"] = _crl(pki, revoked)
    monkeypatch.setattr(service, "catalog", lambda cfg: {"backups": [], "plan": None})
    server = service.TLSServer(
        ("127.0.0.1", 0), service.make_handler(cfg), service.server_context(cfg), max_connections=4, handshake_timeout=2
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def request(pki, port, path, who="db-02"):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if who:
        ctx.load_cert_chain(*pki[who])
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_only_the_listed_clients_get_an_answer_on_any_path(pki, agent):
    assert request(pki, agent, "/catalog")[0] == 200
    status, body = request(pki, agent, "/files/base/20261201T000000Z/backup.xb.zst")
    assert (status, body) == (200, b"the backup")
    # A certificate of the same CA for a name that is no client: refused on every path.
    for path in ("/catalog", "/files/base/20261201T000000Z/backup.xb.zst", "/status", "/backup?lsn=0"):
        status, body = request(pki, agent, path, who="intruder")
        assert status == 403 and "intruder may not ask" in json.loads(body)["error"]
    # The listed host's other certificate (its MariaDB's key, no OU=backup): refused.
    status, body = request(pki, agent, "/catalog", who="db-02-general")
    assert status == 403 and "OU=backup" in json.loads(body)["error"]
    # No certificate at all: the handshake fails.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        request(pki, agent, "/catalog", who=None)


def test_before_its_revocation_a_stolen_certificate_is_a_client_like_any_other(pki, agent):
    assert request(pki, agent, "/catalog", who="db-02-stolen")[0] == 200


@pytest.mark.parametrize("agent", [["db-02-stolen"]], indirect=True)
def test_a_revoked_certificate_fails_the_handshake_and_the_others_still_work(pki, agent, capfd):
    """The CA's revocation list (pki_revoke): db-02's revoked backup certificate opens nothing,
    its current one still does; an empty list changes nothing."""
    # TLS 1.3: the server checks the client's certificate after the client's side of the
    # handshake is over, so the client sees either the server's alert or a reset, never an answer.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(pki, agent, "/catalog", who="db-02-stolen")
    # The server writes its log line after its alert has left: wait for it.
    err = ""
    for _attempt in range(50):
        err += capfd.readouterr().err
        if "certificate revoked" in err:
            break
        time.sleep(0.1)
    assert "certificate revoked" in err
    assert request(pki, agent, "/catalog")[0] == 200


@pytest.mark.parametrize("agent", [[]], indirect=True)
def test_an_empty_revocation_list_refuses_nobody(pki, agent):
    assert request(pki, agent, "/catalog")[0] == 200
    assert request(pki, agent, "/catalog", who="db-02-stolen")[0] == 200


def test_a_client_refuses_a_server_whose_certificate_was_revoked(pki, agent):
    """The other end: an agent's client context (client_context) with the CRL checks the server."""
    from webinfra_agents.backup.common import client_context  # noqa: PLC0415

    cfg = {"tls": {"ca": pki["ca"], "cert": pki["db-02"][0], "key": pki["db-02"][1], "crl": _crl(pki, ["agent"])}}
    conn = http.client.HTTPSConnection("127.0.0.1", agent, timeout=5, context=client_context(cfg))
    with pytest.raises(ssl.SSLError):
        conn.request("GET", "/catalog")
    conn.close()


def test_an_idle_connection_does_not_delay_a_legitimate_request(pki, agent):
    idle = [socket.create_connection(("127.0.0.1", agent)) for _sock in range(2)]
    try:
        started = time.monotonic()
        assert request(pki, agent, "/catalog")[0] == 200
        # Served beside the idle sockets (their handshakes wait in their own threads).
        assert time.monotonic() - started < 1.0
    finally:
        for sock in idle:
            sock.close()


def test_connections_beyond_the_limit_are_closed_and_the_slots_come_back(pki, agent):
    idle = [socket.create_connection(("127.0.0.1", agent)) for _sock in range(4)]
    try:
        time.sleep(0.2)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            request(pki, agent, "/catalog")
    finally:
        for sock in idle:
            sock.close()
    # The idle clients' handshakes time out (2 s here) and free their slots.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert request(pki, agent, "/catalog")[0] == 200
            break
        except (ssl.SSLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize(
    ("plan", "kind"),
    [
        ({"chain": ["../../etc"], "binlogs": []}, "backup id"),
        ({"chain": ["20261201T000000Z"], "binlogs": [{"server_id": "1/..", "name": "x"}]}, "server id"),
        ({"chain": ["20261201T000000Z"], "binlogs": [{"server_id": "1", "name": "../../root/.ssh/a"}]}, "binary log"),
        ({"chain": ["20261201T000000Z"], "binlogs": [{"server_id": "1", "name": "mysql-bin..000001"}]}, "binary log"),
    ],
)
def test_names_from_a_catalog_that_would_be_paths_are_refused(plan, kind):
    with pytest.raises(bk.BackupError, match=kind):
        bk.check_plan_names(plan)


def test_well_formed_catalog_names_pass():
    plan = {"chain": ["20261201T000000Z"], "binlogs": [{"server_id": "12", "name": "mysql-bin.000004"}]}
    assert bk.check_plan_names(plan) is plan


class _Agent(http.server.BaseHTTPRequestHandler):
    """An HA agent's /primary: 200 on the lease holder, 503 elsewhere (the class attribute)."""

    status = 200

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/primary" else 404)
        self.end_headers()

    def log_message(self, *_args):
        return None


class _FakePyMySQL:
    """pymysql for primary_of: every source answers with the read_only given per address."""

    class cursors:  # noqa: N801 - pymysql's name
        DictCursor = object

    def __init__(self, read_only):
        self.read_only = read_only

    def connect(self, host, **_kwargs):
        read_only = self.read_only[host]

        class Cursor:
            def execute(self, sql):
                self.sql = sql

            def fetchone(self):
                return {"ro": read_only, "id": 7}

            def fetchall(self):
                return [{"Log_name": "mysql-bin.000001"}]

        class Conn:
            def cursor(self):
                return Cursor()

            def close(self):
                return None

        return Conn()


@pytest.mark.parametrize(("agent_answer", "followed"), [(200, "db-01"), (503, None)])
def test_the_archive_follows_the_lease_holder_only(monkeypatch, agent_answer, followed):
    """A writable server whose HA agent does not say it holds the lease (a former primary not yet
    fenced) is not followed; without HA agents (port 0) the writable server is."""
    import sys  # noqa: PLC0415

    from webinfra_agents.backup import repository  # noqa: PLC0415

    handler = type("Agent", (_Agent,), {"status": agent_answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setitem(sys.modules, "pymysql", _FakePyMySQL({"127.0.0.1": 0}))
        monkeypatch.setitem(sys.modules, "pymysql.cursors", _FakePyMySQL.cursors)
        cfg = {
            "tls": {"ca": "ca.pem"},
            "repository": {
                "binlog": {"user": "u", "password": "p"},
                "sources": [{"name": "db-01", "address": "127.0.0.1"}],
                "ha_agent_port": server.server_address[1],
            },
        }
        found = repository.primary_of(cfg)
        assert (found[0] if found else None) == followed
        cfg["repository"]["ha_agent_port"] = 0
        assert repository.primary_of(cfg)[0] == "db-01"
    finally:
        server.shutdown()
        server.server_close()
