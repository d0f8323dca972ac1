import http.server
import json
import threading

import pytest

from webinfra_agents.ha import etcd


def test_prefix_end_and_base64():
    assert etcd.prefix_end("/webinfra/a/") == b"/webinfra/a0"
    assert etcd.unb64(etcd.b64("leader")) == "leader"


def test_calls_fall_over_to_the_next_endpoint_and_remember_it():
    calls = []

    def opener(url, data, timeout, headers):
        calls.append(url)
        if url.startswith("https://10.0.0.1"):
            raise OSError("connection refused")
        if url.endswith("/v3/kv/range"):
            kv = {"key": etcd.b64("/w/leader"), "value": etcd.b64(json.dumps({"name": "db-01"})), "lease": "7"}
            return {"header": {"revision": "12"}, "kvs": [kv]}
        return {"succeeded": True}

    client = etcd.Client(["https://10.0.0.1:2379", "https://10.0.0.2:2379"], opener=opener)
    revision, kvs = client.get_prefix("/w/")
    assert revision == 12 and kvs["/w/leader"]["lease"] == 7
    assert client.endpoints[0] == "https://10.0.0.2:2379"
    assert client.txn([etcd.absent("/w/leader")], [etcd.put_op("/w/leader", "x", 7)])
    assert calls[-1] == "https://10.0.0.2:2379/v3/kv/txn"


def test_every_endpoint_failing_names_them_all():
    def opener(url, data, timeout, headers):
        raise OSError("timed out")

    client = etcd.Client(["https://a:2379", "https://b:2379"], opener=opener)
    with pytest.raises(etcd.EtcdError, match="https://a:2379: timed out; https://b:2379: timed out"):
        client.grant(10)


def test_gateway_errors_are_errors():
    client = etcd.Client(["https://a:2379"], opener=lambda *a: {"error": "etcdserver: requested lease not found"})
    with pytest.raises(etcd.EtcdError, match="lease not found"):
        client.keepalive(5)


def test_connections_persist_between_calls_and_a_broken_one_is_replaced():
    """HTTP keep-alive: two calls, one TCP connection; after the server dropped it, a new one."""
    peers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            peers.append(self.client_address[1])
            body = b'{"header": {"revision": "3"}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if len(peers) == 2:
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = etcd.Client([f"http://127.0.0.1:{server.server_address[1]}"], timeout=2)
        for _call in range(3):
            assert client.get_prefix("/w/")[0] == 3
        assert peers[0] == peers[1] != peers[2]
        client.close()
    finally:
        server.shutdown()


class AuthEtcd:
    """etcd with access control, as the gateway answers: a token per authentication; tokens
    expire (`expire`); an unauthenticated call is refused."""

    def __init__(self):
        self.tokens, self.calls, self.changed = set(), [], False
        self.password = "secret-password-1"  # noqa: S105 - a test value

    def opener(self, url, data, timeout, headers):
        path = url.split("/v3/", 1)[1]
        self.calls.append((path, headers.get("Authorization")))
        body = json.loads(data)
        if path == "auth/authenticate":
            if body != {"name": "webinfra-ha-db-01", "password": self.password}:
                raise etcd.EtcdHTTPError('HTTP 400 {"error": "etcdserver: authentication failed"}')
            token = f"jwt-{len(self.calls)}"
            self.tokens.add(token)
            return {"token": token}
        if not headers.get("Authorization"):
            # No token (etcd 3.4 and 3.5, with a client certificate without a common name).
            raise etcd.EtcdHTTPError('HTTP 403 {"code":7, "message":"etcdserver: permission denied"}')
        if headers.get("Authorization") not in self.tokens:
            raise etcd.EtcdHTTPError('HTTP 401 {"error": "etcdserver: invalid auth token"}')
        return {"header": {"revision": "5"}}

    def expire(self):
        self.tokens.clear()

    def opener_after_a_role_change(self, url, data, timeout, headers):
        if not self.changed and not url.endswith("auth/authenticate"):
            self.changed = True
            self.tokens.clear()
            raise etcd.EtcdHTTPError('HTTP 400 {"code":3, "message":"etcdserver: revision of auth store is old"}')
        return self.opener(url, data, timeout, headers)


def test_a_user_authenticates_first_and_again_when_the_token_expired():
    fake = AuthEtcd()
    client = etcd.Client(["https://a:2379"], opener=fake.opener, user="webinfra-ha-db-01", password="secret-password-1")  # noqa: S106 - a test value
    assert client.get_prefix("/w/")[0] == 5
    assert client.get_prefix("/w/")[0] == 5
    assert [p for p, _token in fake.calls] == ["auth/authenticate", "kv/range", "kv/range"]
    assert fake.calls[0][1] is None and fake.calls[1][1] == fake.calls[2][1] == client.token
    fake.expire()
    fake.calls.clear()
    assert client.get_prefix("/w/")[0] == 5
    assert [p for p, _token in fake.calls] == ["kv/range", "auth/authenticate", "kv/range"]


def test_a_wrong_password_is_an_error_naming_it():
    fake = AuthEtcd()
    client = etcd.Client(["https://a:2379"], opener=fake.opener, user="webinfra-ha-db-01", password="wrong")  # noqa: S106 - a test value
    with pytest.raises(etcd.EtcdError, match="authentication failed"):
        client.grant(10)
    assert [p for p, _token in fake.calls] == ["auth/authenticate"]


def test_without_a_user_no_token_is_asked_for():
    fake = AuthEtcd()
    client = etcd.Client(["https://a:2379"], opener=fake.opener)
    with pytest.raises(etcd.EtcdError, match="permission denied"):
        client.get_prefix("/w/")
    assert [p for p, _token in fake.calls] == ["kv/range"]


def test_before_access_control_is_on_the_user_goes_without_a_token_then_gets_one():
    fake = AuthEtcd()
    enabled = {"on": False}
    opener = fake.opener

    def switch(url, data, timeout, headers):
        if not enabled["on"]:
            if url.endswith("auth/authenticate"):
                raise etcd.EtcdHTTPError('HTTP 400 {"error": "etcdserver: authentication is not enabled"}')
            return {"header": {"revision": "5"}}
        return opener(url, data, timeout, headers)

    client = etcd.Client(["https://a:2379"], opener=switch, user="webinfra-ha-db-01", password="secret-password-1")  # noqa: S106
    assert client.get_prefix("/w/")[0] == 5
    assert client.get_prefix("/w/")[0] == 5
    assert client.token == ""  # asked once: no token while access control is off
    enabled["on"] = True
    assert client.get_prefix("/w/")[0] == 5
    assert client.token and [p for p, _token in fake.calls] == ["kv/range", "auth/authenticate", "kv/range"]


def test_a_token_from_before_a_change_of_users_is_renewed():
    fake = AuthEtcd()
    client = etcd.Client(["https://a:2379"], opener=fake.opener, user="webinfra-ha-db-01", password="secret-password-1")  # noqa: S106
    assert client.get_prefix("/w/")[0] == 5
    client._opener = fake.opener_after_a_role_change
    assert client.get_prefix("/w/")[0] == 5


def test_a_changed_revocation_list_gives_new_connections_a_new_context(tmp_path):
    """site.yml updates the CA's revocation list without restarting the agent: the next new
    connection checks peers against the new list."""
    import datetime  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def write_crl(serials):
        builder = x509.CertificateRevocationListBuilder().issuer_name(name).last_update(now)
        builder = builder.next_update(now + datetime.timedelta(days=1))
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        (tmp_path / "crl.pem").write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))

    write_crl([])
    client = etcd.Client(
        ["https://10.0.0.1:2379"], ca_file=str(tmp_path / "ca.pem"), crl_file=str(tmp_path / "crl.pem")
    )
    first = client._current_context()
    assert client._current_context() is first
    write_crl([7, 8])
    assert client._current_context() is not first


def test_a_password_rotation_never_leaves_the_agent_without_etcd(tmp_path):
    """site.yml writes the new password to the agent's password file, then changes it in etcd:
    in between the agent authenticates with the last password that worked, afterwards with the
    new one, and it is never restarted for it."""
    fake = AuthEtcd()
    secret = tmp_path / "etcd-password"
    secret.write_text("secret-password-1\n")
    client = etcd.Client(["https://a:2379"], opener=fake.opener, user="webinfra-ha-db-01", password_file=str(secret))
    assert client.get_prefix("/w/")[0] == 5
    secret.write_text("secret-password-2\n")  # the host has the new password, etcd not yet
    fake.expire()
    assert client.get_prefix("/w/")[0] == 5
    assert client.password == "secret-password-1"  # noqa: S105 - a test value
    fake.password = "secret-password-2"  # noqa: S105 - etcd changed it: the tokens are stale
    fake.expire()
    assert client.get_prefix("/w/")[0] == 5
    assert client.password == "secret-password-2"  # noqa: S105 - a test value
    fake.password = "secret-password-3"  # noqa: S105 - etcd only: no password works
    fake.expire()
    with pytest.raises(etcd.EtcdError, match="authentication failed"):
        client.get_prefix("/w/")
