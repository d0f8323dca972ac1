"""The control planes from inside the stack: who may ask the HA agents and the backup agents what,
tried from real hosts with real credentials (the application's user, a host's own certificate, a
certificate of the internal CA for a name no host has, none at all)."""

import base64
import datetime
import json
import os
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from labhosts import groups, host, hostvars, http_get, inventory_dir, playbook_digest, run_playbook, wait_for

PRIMARY = groups()["db_primary"][0]
REPLICA = groups()["db_replicas"][0]
BACKUP = groups()["backups"][0]
MONITOR = groups()["monitoring"][0]
AGENT_PORT = int(hostvars(PRIMARY).get("mysql_replication_agent_port", 3308))
BACKUP_PORT = int(hostvars(BACKUP).get("backup_agent_port", 3309))
TLS = "/etc/webinfra/backup-tls"
SOCKET = "/run/webinfra-ha-agent/control.sock"

# A GET or POST from inside a host, as whoever runs it: JSON with status or error, and seconds.
CLIENT = """
import http.client, json, ssl, sys, time
url_host, port, method, path, cert, key, ca = sys.argv[1:8]
started = time.monotonic()
try:
    if ca == "-":
        conn = http.client.HTTPConnection(url_host, int(port), timeout=10)
    else:
        ctx = ssl.create_default_context(cafile=ca)
        if cert != "-":
            ctx.load_cert_chain(cert, key)
        conn = http.client.HTTPSConnection(url_host, int(port), timeout=10, context=ctx)
    body = json.dumps({"reason": "intruder", "to": "x"}) if method == "POST" else None
    conn.request(method, path, body=body)
    answer = conn.getresponse()
    print(json.dumps({"status": answer.status, "body": answer.read(2000).decode("utf-8", "replace"),
                      "seconds": time.monotonic() - started}))
except Exception as exc:
    print(json.dumps({"error": repr(exc), "seconds": time.monotonic() - started}))
"""


def address(name):
    return host(name).interface("eth0").addresses[0]


def ask(source, target, port, method="GET", path="/status", cert="-", key="-", ca="-", user="root"):
    prefix = "" if user == "root" else f"runuser -u {user} -- "
    cmd = host(source).run(
        prefix + "python3 -c %s %s %s %s %s %s %s %s", CLIENT, address(target), str(port), method, path, cert, key, ca
    )
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def ha_status(name):
    return json.loads(ask(name, name, AGENT_PORT)["body"])


def test_the_application_user_cannot_ask_the_ha_agents_anything():
    # Over the network: every operator request refused, whoever sends it (here the app's user).
    for path in ("/pause", "/switchover", "/failover", "/resume"):
        answer = ask(REPLICA, PRIMARY, AGENT_PORT, "POST", path, user="webapp")
        assert answer.get("status") == 403 and "not taken over the network" in answer["body"], answer
    assert ha_status(PRIMARY)["paused"] is False and ha_status(PRIMARY)["role"] == "primary"
    # On the host: the control socket is the agent's user's (and root's) alone.
    probe = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{SOCKET}')"
    cmd = host(PRIMARY).run("runuser -u webapp -- python3 -c %s", probe)
    assert cmd.rc != 0 and "Permission denied" in cmd.stderr, (cmd.stdout, cmd.stderr)
    control = host(PRIMARY).file(SOCKET)
    assert (control.mode, control.user) == (0o600, "webinfra-ha"), (control.mode, control.user)
    assert (host(PRIMARY).file(os.path.dirname(SOCKET)).mode, host(PRIMARY).file(os.path.dirname(SOCKET)).user) == (
        0o700,
        "webinfra-ha",
    )


def _alerts():
    login = hostvars(MONITOR).get("monitoring_web_user", "admin"), hostvars(MONITOR)["monitoring_web_password"]
    token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    port = int(hostvars(MONITOR).get("monitoring_prometheus_port", 9090))
    url = f"https://{address(MONITOR)}:{port}/api/v1/alerts"
    answer = http_get(host(MONITOR), url, {"Authorization": "Basic " + token})
    return {a["labels"]["alertname"]: a["state"] for a in json.loads(answer["body"])["data"]["alerts"]}


def test_a_pause_needs_a_reason_and_an_end_fires_its_alert_and_ends():
    refused = run_playbook("playbooks/ha_pause.yml")
    text = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0 and "give ha_pause_reason" in text, text[-2000:]
    too_long = run_playbook("playbooks/ha_pause.yml", "-e", "ha_pause_reason=test", "-e", "ha_pause_seconds=7200")
    text = " ".join((too_long.stdout + too_long.stderr).split())
    assert too_long.returncode != 0 and "at most 3600" in text, text[-2000:]
    assert not ha_status(REPLICA)["paused"]
    proc = run_playbook("playbooks/ha_pause.yml", "-e", "ha_pause_reason='molecule test'", "-e", "ha_pause_seconds=300")
    assert proc.returncode == 0, proc.stdout[-3000:]
    try:
        assert wait_for(lambda: ha_status(REPLICA)["paused"], timeout=10)
        pause = ha_status(REPLICA)["pause"]
        assert pause["reason"] == "molecule test" and 290 < pause["until"] - time.time() <= 300, pause
        assert wait_for(lambda: _alerts().get("DatabaseFailoverPaused") == "firing", timeout=60), _alerts()
    finally:
        resumed = run_playbook("playbooks/ha_pause.yml", "-e", "ha_pause=false")
        assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert wait_for(lambda: not ha_status(REPLICA)["paused"] and not ha_status(PRIMARY)["paused"], timeout=10)


def _intruder_certificate():
    """A certificate of the scenario's internal CA for a name no host has (CN=intruder)."""
    pki = Path(inventory_dir()) / ".pki"
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("intruder")]), critical=False)
        # As the pki role issues them (Python 3.13's strict verification wants both identifiers).
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key.decode()


def test_the_backup_repository_answers_its_clients_only():
    mine = (f"{TLS}/host.pem", f"{TLS}/host.key", f"{TLS}/ca.pem")
    answer = ask(PRIMARY, BACKUP, BACKUP_PORT, "GET", "/catalog", *mine)
    assert answer.get("status") == 200, answer
    newest = (json.loads(answer["body"]).get("plan") or {}).get("chain", [None])[-1]
    cert, key = _intruder_certificate()
    target = host(PRIMARY)
    written = target.run(
        "umask 077 && printf '%%s' %s > /root/intruder.pem && printf '%%s' %s > /root/intruder.key", cert, key
    )
    assert written.rc == 0, written.stderr
    try:
        intruder = ("/root/intruder.pem", "/root/intruder.key", f"{TLS}/ca.pem")
        paths = ["/catalog", "/status", "/backup?lsn=0"] + ([f"/files/base/{newest}/backup.xb.zst"] if newest else [])
        for path in paths:
            answer = ask(PRIMARY, BACKUP, BACKUP_PORT, "GET", path, *intruder)
            assert answer.get("status") == 403 and "intruder may not ask" in answer["body"], (path, answer)
    finally:
        target.run("rm -f /root/intruder.pem /root/intruder.key")
    # The same host's MariaDB key (readable by the mysql user): a server-only certificate, refused
    # in the handshake (no client-authentication usage), and it would be for its OU anyway.
    mariadb = ("/etc/mysql/tls/server.pem", "/etc/mysql/tls/server.key", f"{TLS}/ca.pem")
    answer = ask(PRIMARY, BACKUP, BACKUP_PORT, "GET", "/catalog", *mariadb)
    assert "error" in answer or (answer.get("status") == 403 and "OU=backup" in answer["body"]), answer
    # No certificate at all: the handshake fails.
    answer = ask(PRIMARY, BACKUP, BACKUP_PORT, "GET", "/catalog", "-", "-", f"{TLS}/ca.pem")
    assert "error" in answer, answer


def test_idle_connections_do_not_delay_the_backup_agent():
    hold = (
        "import socket, time; "
        f"s = [socket.create_connection(('{address(BACKUP)}', {BACKUP_PORT})) for _n in range(3)]; time.sleep(20)"
    )
    host(REPLICA).run("nohup python3 -c %s >/dev/null 2>&1 &", hold)
    time.sleep(1)
    mine = (f"{TLS}/host.pem", f"{TLS}/host.key", f"{TLS}/ca.pem")
    answer = ask(PRIMARY, BACKUP, BACKUP_PORT, "GET", "/catalog", *mine)
    assert answer.get("status") == 200 and answer["seconds"] < 1.0, answer


def test_the_backup_agent_has_a_key_of_its_own():
    # Its own key pair (pki_purposes: backup), root's alone.
    target = host(PRIMARY)
    key = target.file(f"{TLS}/host.key")
    assert key.user == "root" and key.mode == 0o600
    subject = target.check_output(f"openssl x509 -in {TLS}/host.pem -noout -subject -nameopt RFC2253")
    assert "OU=backup" in subject and f"CN={PRIMARY}" in subject, subject


HA_TLS = "/etc/webinfra/tls"
EXPORTERS_TLS = "/etc/prometheus/exporters-tls"
# Each service's key on the hosts: (key, owner, group, mode, certificate, for servers only).
SERVICE_KEYS = {
    "mariadb": ("/etc/mysql/tls/server.key", "root", "mysql", 0o640, "/etc/mysql/tls/server.pem", True),
    "etcd": ("/etc/etcd/tls/member.key", "root", "etcd", 0o640, "/etc/etcd/tls/member.pem", False),
    "etcd-client": ("/etc/webinfra/tls/etcd-client.key", "root", "root", 0o600, f"{HA_TLS}/etcd-client.pem", False),
    "backup": (f"{TLS}/host.key", "root", "root", 0o600, f"{TLS}/host.pem", False),
    "nginx": ("/etc/nginx/tls/server.key", "root", "root", 0o600, "/etc/nginx/tls/server.crt", True),
    "exporters": (f"{EXPORTERS_TLS}/key.pem", "root", "prometheus", 0o640, f"{EXPORTERS_TLS}/cert.pem", True),
    "haproxy": ("/etc/haproxy/tls/stats.pem", "root", "root", 0o600, "/etc/haproxy/tls/stats.pem", True),
    "monitoring": ("/etc/prometheus/web/key.pem", "root", "prometheus", 0o640, "/etc/prometheus/web/cert.pem", True),
}


STACK = ("loadbalancers", "webservers", "db_primary", "db_replicas", "etcd", "backups", "monitoring")


@pytest.mark.parametrize("name", sorted({h for g in STACK for h in groups().get(g, [])}))
def test_each_service_holds_a_key_of_its_own(name):
    """Keys per purpose (pki_purposes from the stack model): every service of the host its own key
    pair, readable by that service alone, its certificate with the purpose as OU; the server-only
    ones (no clientAuth) cannot serve as another service's client certificate."""
    target = host(name)
    seen = {}
    for purpose, (path, owner, group, mode, cert, server_only) in SERVICE_KEYS.items():
        if not target.file(path).exists:
            continue
        f = target.file(path)
        assert (f.user, f.group, f.mode) == (owner, group, mode), (purpose, f.user, f.group, oct(f.mode))
        text = target.check_output(f"openssl x509 -in {cert} -noout -subject -ext extendedKeyUsage -nameopt RFC2253")
        assert f"OU={purpose}" in text, (purpose, text)
        assert ("Client Authentication" not in text) == server_only, (purpose, text)
        seen[purpose] = target.check_output(f"openssl pkey -in {path} -pubout | sha256sum")
    assert len(seen) >= 2, seen
    assert len(set(seen.values())) == len(seen), seen  # no two services share a key


def test_the_database_key_opens_no_other_service():
    """MariaDB's key (readable by the mysql group) is for a server only: etcd's client port refuses
    it in the TLS handshake, the backup agents refuse it (no OU=backup)."""
    member = groups()["etcd"][0]
    target = host(PRIMARY)
    tls = "--cacert=/etc/mysql/tls/ca.pem --cert=/etc/mysql/tls/server.pem --key=/etc/mysql/tls/server.key"
    refused = target.run(
        f"ETCDCTL_API=3 etcdctl --dial-timeout=5s --command-timeout=5s "
        f"--endpoints=https://{address(member)}:2379 {tls} get /webinfra/ --prefix --keys-only"
    )
    assert refused.rc != 0, refused.stdout
    mariadb = ("/etc/mysql/tls/server.pem", "/etc/mysql/tls/server.key", f"{TLS}/ca.pem")
    answer = ask(PRIMARY, BACKUP, BACKUP_PORT, "GET", "/catalog", *mariadb)
    assert answer.get("status") == 403 or "error" in answer, answer


ETCD_TLS = "--cacert=/etc/etcd/tls/ca.pem --cert=/etc/etcd/tls/member.pem --key=/etc/etcd/tls/member.key"


def etcd_member_not_a_database_host():
    databases = set(groups()["db_primary"] + groups()["db_replicas"])
    return next(h for h in groups()["etcd"] if h not in databases)


ETCD_CLIENT = """
import http.client, json, ssl, sys
target, path, cert, key, token, body = sys.argv[1:7]
ca = "/etc/mysql/tls/ca.pem" if cert.startswith("/etc/webinfra") else "/etc/etcd/tls/ca.pem"
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection(target, 2379, timeout=10, context=ctx)
conn.request("POST", "/v3/" + path, body=body, headers={"Authorization": token} if token != "-" else {})
answer = conn.getresponse()
print(answer.status)
print(answer.read().decode("utf-8", "replace"))
"""


def etcd_gateway(source, cert, key, path, body, token=""):
    """POST to an etcd member's JSON gateway from `source`: (HTTP status, text)."""
    target = address(etcd_member_not_a_database_host())
    cmd = host(source).run(
        "python3 -c %s %s %s %s %s %s %s", ETCD_CLIENT, target, path, cert, key, token or "-", json.dumps(body)
    )
    assert cmd.rc == 0, cmd.stderr
    status, _newline, text = cmd.stdout.partition("\n")
    return status.strip(), text


def test_an_etcd_member_that_is_no_database_host_cannot_touch_the_leader():
    """etcd's access control: a member's own certificate (etcd's key) reads and writes no key,
    over gRPC (etcdctl, the certificate's name is no etcd user) or the JSON gateway (a named
    certificate is refused); the role's client certificate without a password neither."""
    member = etcd_member_not_a_database_host()
    cluster = hostvars(PRIMARY).get("mysql_replication_ha_cluster", "webinfra")
    leader = f"/webinfra/{cluster}/leader"
    target = host(member)
    endpoint = f"--endpoints=https://{address(member)}:2379"
    for command in (f"put {leader} {member}", f"put /webinfra/{cluster}/pause x", f"get {leader}"):
        denied = target.run(f"ETCDCTL_API=3 etcdctl {endpoint} {ETCD_TLS} {command}")
        assert denied.rc != 0 and "permission denied" in denied.stderr, (command, denied.stderr[-500:])
    key = base64.b64encode(leader.encode()).decode()
    status, text = etcd_gateway(
        member, "/etc/etcd/tls/member.pem", "/etc/etcd/tls/member.key", "kv/put", {"key": key, "value": key}
    )
    assert status == "400" and "CommonName" in text, (status, text)
    status, text = etcd_gateway(
        member, "/etc/etcd/tls/client.pem", "/etc/etcd/tls/client.key", "kv/put", {"key": key, "value": key}
    )
    # Without a token: "user name is empty" or "permission denied", as the etcd release says it.
    assert status in ("400", "403") and ("user name is empty" in text or "permission denied" in text), (status, text)
    # The agents still hold the lease (nothing was written): the primary leads.
    answer = ask(MONITOR, PRIMARY, AGENT_PORT, path="/status")
    assert answer["status"] == 200 and json.loads(answer["body"])["leader"] == PRIMARY, answer


def test_each_ha_agent_has_its_own_etcd_user_limited_to_its_cluster():
    """The agent's etcd client certificate is its own (root-only, no common name), not MariaDB's; its
    user may write its cluster's prefix and nothing else."""
    target = host(PRIMARY)
    key = target.file("/etc/webinfra/tls/etcd-client.key")
    assert key.user == "root" and key.mode == 0o600
    subject = target.check_output("openssl x509 -in /etc/webinfra/tls/etcd-client.pem -noout -subject -nameopt RFC2253")
    assert "OU=etcd-client" in subject and "CN=" not in subject, subject
    mariadb = target.check_output("openssl pkey -in /etc/mysql/tls/server.key -pubout | sha256sum")
    own = target.check_output("openssl pkey -in /etc/webinfra/tls/etcd-client.key -pubout | sha256sum")
    assert mariadb != own
    config = json.loads(target.check_output("cat /etc/webinfra/ha-agent.json"))["etcd"]
    assert config["user"] == f"webinfra-ha-{PRIMARY}" and config["cert"] == "/etc/webinfra/tls/etcd-client.pem"
    assert target.file("/etc/webinfra/ha-agent.json").mode == 0o600
    assert "password" not in config and target.file(config["password_file"]).mode == 0o600
    _user, password = agent_etcd_credentials(PRIMARY)
    tls = "/etc/webinfra/tls/etcd-client"
    status, text = etcd_gateway(
        PRIMARY,
        f"{tls}.pem",
        f"{tls}.key",
        "auth/authenticate",
        {"name": config["user"], "password": password},
    )
    assert status == "200", (status, text)
    token = json.loads(text)["token"]
    outside = base64.b64encode(b"/other/key").decode()
    status, text = etcd_gateway(
        PRIMARY, f"{tls}.pem", f"{tls}.key", "kv/put", {"key": outside, "value": outside}, token
    )
    assert status == "403" and "permission denied" in text, (status, text)
    # Its one home: the file the stack model generated on the controller, beside the internal CA.
    stored = Path(inventory_dir()) / ".pki" / "etcd" / config["user"]
    assert stored.read_text().strip() == password and stored.stat().st_mode & 0o777 == 0o600


def agent_etcd_credentials(name):
    """The HA agent's etcd user (its settings) and password (its own file, root-only)."""
    config = json.loads(host(name).check_output("cat /etc/webinfra/ha-agent.json"))["etcd"]
    return config["user"], host(name).check_output(f"cat {config['password_file']}").strip()


def _etcd_authenticate(source, cert, key, password=None):
    """auth/authenticate at an etcd member from `source` with this client certificate and the
    source's HA agent's user (and password, else the agent's): the command's result (rc 0 and
    the HTTP status, or the TLS error)."""
    user, current = agent_etcd_credentials(source)
    body = json.dumps({"name": user, "password": password or current})
    target = address(etcd_member_not_a_database_host())
    return host(source).run(
        "python3 -c %s %s %s %s %s %s %s", ETCD_CLIENT, target, "auth/authenticate", cert, key, "-", body
    )


def test_keys_revoked_and_a_password_rotated_in_one_run_without_an_outage():
    """Two day-2 changes in one site.yml run. pki_revoke, as after a theft of the replica's keys:
    its backup and etcd-client certificates go on the CA's revocation list and are issued again
    with new keys; the stolen ones open neither the backup repository nor etcd any more, the new
    ones do. The primary's HA agent's etcd password rotated (its file on the controller removed:
    a new one is made): the etcd play leaves etcd's password, the databases play hands the new
    one to the agent without a restart, the access-control play changes it in etcd; the primary
    keeps leading. A second run with the same entry changes nothing."""
    target = host(REPLICA)
    leader_pid = host(PRIMARY).check_output("systemctl show -p MainPID --value webinfra-ha-agent").strip()
    user, old_password = agent_etcd_credentials(PRIMARY)
    stored = Path(inventory_dir()) / ".pki" / "etcd" / user
    stored.unlink()
    stolen = "/root/stolen"
    keys = f"{TLS}/host.pem {TLS}/host.key {HA_TLS}/etcd-client.pem {HA_TLS}/etcd-client.key"
    target.run(f"mkdir -p {stolen} && cp {keys} {stolen}/")
    assert _etcd_authenticate(REPLICA, f"{stolen}/etcd-client.pem", f"{stolen}/etcd-client.key").stdout.startswith(
        "200"
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1)
    revoke = json.dumps(
        {
            "pki_revoke": [
                {"host": REPLICA, "purpose": "backup", "issued_before": now},
                {"host": REPLICA, "purpose": "etcd-client", "issued_before": now},
            ]
        }
    )
    try:
        proc = run_playbook("site.yml", "-e", revoke)
        assert proc.returncode == 0, playbook_digest(proc)
        # The stolen backup certificate: the repository's agent refuses it in the handshake.
        answer = ask(
            REPLICA, BACKUP, BACKUP_PORT, "GET", "/catalog", f"{stolen}/host.pem", f"{stolen}/host.key", f"{TLS}/ca.pem"
        )
        assert "error" in answer, answer
        answer = ask(
            REPLICA, BACKUP, BACKUP_PORT, "GET", "/catalog", f"{TLS}/host.pem", f"{TLS}/host.key", f"{TLS}/ca.pem"
        )
        assert answer.get("status") == 200, answer
        # The stolen etcd client certificate: etcd refuses it (the password alone is no way in).
        refused = _etcd_authenticate(REPLICA, f"{stolen}/etcd-client.pem", f"{stolen}/etcd-client.key")
        assert refused.rc != 0, (refused.stdout, refused.stderr[-500:])
        assert _etcd_authenticate(REPLICA, f"{HA_TLS}/etcd-client.pem", f"{HA_TLS}/etcd-client.key").stdout.startswith(
            "200"
        )
        serial = target.check_output(f"openssl x509 -in {stolen}/host.pem -noout -serial").split("=")[1]
        crl = target.check_output(f"openssl crl -in {HA_TLS}/crl.pem -noout -text")
        assert serial.upper() in crl.replace(":", "").upper(), crl
        # The HA agents go on (the replica's agent with its new certificate): the primary leads.
        assert wait_for(lambda: ha_status(REPLICA)["leader"] == PRIMARY and ha_status(REPLICA)["etcd_ok"], timeout=30)
        # The rotation: a new password on the host and in etcd, the old one refused, the agent
        # never restarted and still leading.
        _user, new_password = agent_etcd_credentials(PRIMARY)
        assert new_password != old_password and stored.read_text().strip() == new_password
        own = (f"{HA_TLS}/etcd-client.pem", f"{HA_TLS}/etcd-client.key")
        assert _etcd_authenticate(PRIMARY, *own).stdout.startswith("200")
        assert not _etcd_authenticate(PRIMARY, *own, password=old_password).stdout.startswith("200")
        assert host(PRIMARY).check_output("systemctl show -p MainPID --value webinfra-ha-agent").strip() == leader_pid
        status = ha_status(PRIMARY)
        assert status["role"] == "primary" and status["etcd_ok"], status
        again = run_playbook("site.yml", "--tags", "pki", "-e", revoke)
        assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP", 1)[1], playbook_digest(again)
    finally:
        target.run(f"rm -rf {stolen}")
