"""Security of the deployed stack, seen from a client host outside the admin networks."""

import datetime
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from labhosts import ca_certificate, groups, haproxy_stat, host, hostvars, http_get, run_playbook, sql, wait_for

LBS = groups()["loadbalancers"]
WEBS = groups()["webservers"]
PRIMARY = groups()["db_primary"][0]
REPLICAS = groups()["db_replicas"]
CLIENT = groups()["clients"][0]
ADMIN = LBS[0]  # the scenario's admin network is lb-01's address
# The database's and the node exporter's ports as the scenario moved them (molecule.yml).
DB = int(hostvars(PRIMARY).get("mysql_replication_port", 3306))
NODE = int(hostvars(PRIMARY).get("exporters_node_port", 9100))

PROBE = """
import json, socket, sys, concurrent.futures as cf
def probe(target):
    host, port = target.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        return target, "open"
    except ConnectionRefusedError:
        return target, "refused"
    except OSError:
        return target, "filtered"
    finally:
        s.close()
with cf.ThreadPoolExecutor(16) as pool:
    print(json.dumps(dict(pool.map(probe, sys.argv[1:]))))
"""


def probe(source, *targets):
    """{"host:port": open|refused|filtered} as seen from host `source` (2 s connect timeout)."""
    out = host(source).check_output("python3 -c %s " + " ".join(["%s"] * len(targets)), PROBE, *targets)
    return json.loads(out)


def test_client_reaches_only_80_and_443_on_the_balancer_and_nothing_else():
    targets = [f"{lb}:{port}" for lb in LBS for port in (22, 80, 443, DB, NODE)]
    targets += [f"{web}:{port}" for web in WEBS for port in (22, 80, 443, DB, 8000)]
    seen = probe(CLIENT, *targets)
    expected = {t: ("open" if t.split(":")[0] in LBS and t.endswith((":80", ":443")) else "filtered") for t in targets}
    assert seen == expected


def listening_ports(name):
    """Every TCP port the host listens on at an address other hosts can reach."""
    ports = set()
    for line in host(name).check_output("ss -Hltn").splitlines():
        local = line.split()[3]
        address, _sep, port = local.rpartition(":")
        if not address.strip("[]").startswith(("127.", "::1")):
            ports.add(int(port))
    return ports


def test_a_scan_of_every_listening_port_from_outside_the_admin_networks_finds_only_80_and_443():
    """A connect scan from the client (on the private network, outside the admin and monitoring
    networks) of every port any stack host listens on (read on the hosts themselves: the
    exporters, Prometheus, Alertmanager, the statistics page, etcd, the HA agents, the writer
    endpoint, the databases, SSH ...): only 80 and 443 of the balancers answer."""
    listening = {name: listening_ports(name) for name in sorted(set(LBS + WEBS + [PRIMARY, *REPLICAS]))}
    assert {80, 443} <= listening[LBS[0]] and DB in listening[PRIMARY] and NODE in listening[PRIMARY]
    targets = [f"{name}:{port}" for name, ports in listening.items() for port in sorted(ports | {80, 443})]
    seen = probe(CLIENT, *targets)
    reachable = sorted(t for t, state in seen.items() if state != "filtered")
    assert reachable == sorted(f"{lb}:{port}" for lb in LBS for port in (80, 443)), seen
    print(f"scanned {len(targets)} ports on {len(listening)} hosts from {CLIENT}: open {reachable}")


def test_the_writer_endpoint_listens_on_the_private_address_only():
    # Before the backend-transport test below, which applies the haproxy role alone (without
    # site.yml's writer endpoint) to lb-01.
    for name in groups()["loadbalancers"]:
        port = hostvars(name).get("haproxy_db_writer_port", 3307)
        listening = [
            line.split()[3] for line in host(name).check_output("ss -Hltn 'sport = :%s'", str(port)).splitlines()
        ]
        assert listening == [f"{host(name).interface('eth0').addresses[0]}:{port}"]


def test_rules_follow_the_roles_of_the_hosts():
    # Positive controls: the hosts are up and the tiers reach each other where they must.
    from_lb = probe(ADMIN, *[f"{web}:443" for web in WEBS], *[f"{web}:22" for web in WEBS])
    for web in WEBS:
        assert from_lb[f"{web}:443"] == "open"  # backend port from the load balancers
        assert from_lb[f"{web}:22"] == "open"  # SSH from the admin networks
    from_replica = probe(REPLICAS[0], f"{PRIMARY}:{DB}")
    assert from_replica == {f"{PRIMARY}:{DB}": "open"}


@pytest.mark.parametrize("name", LBS + WEBS)
def test_ruleset_is_loaded_at_boot_and_drops_by_default(name):
    h = host(name)
    assert h.service("nftables").is_enabled
    table = h.check_output("nft list table inet webinfra")
    assert "hook input priority filter; policy drop;" in table
    assert h.file("/etc/nftables.conf").mode == 0o700


def tls_handshake(version, extra=""):
    """openssl s_client against the balancer from the client; the client itself allows every version."""
    ca = "/tmp/webinfra-ca.pem"  # noqa: S108 - inside the client container
    h = host(CLIENT)
    h.run("printf %s %s > " + ca, "%s", ca_certificate())
    cmd = h.run(
        f"openssl s_client -connect {LBS[0]}:443 -servername {LBS[0]} -{version} "
        f"-cipher 'DEFAULT:@SECLEVEL=0' -CAfile {ca} -verify_return_error {extra} < /dev/null"
    )
    return cmd.rc, cmd.stdout + cmd.stderr


@pytest.mark.parametrize("version", ["tls1", "tls1_1"])
def test_old_tls_versions_are_refused_by_the_server(version):
    rc, out = tls_handshake(version)
    assert rc != 0
    # The server answered with a protocol_version alert: the refusal is the server's.
    assert "alert protocol version" in out, out[-1500:]


@pytest.mark.parametrize("version", ["tls1_2", "tls1_3"])
def test_tls12_and_tls13_succeed_with_http2_and_a_verified_certificate(version):
    rc, out = tls_handshake(version, "-alpn h2,http/1.1")
    assert rc == 0, out[-1500:]
    assert "Verify return code: 0 (ok)" in out
    assert "ALPN protocol: h2" in out
    assert "Cipher is (NONE)" not in out


def test_http_redirects_to_https_and_https_carries_the_security_headers():
    redirect = host(CLIENT).check_output(
        "python3 -c %s %s",
        "import http.client,sys; c=http.client.HTTPConnection(sys.argv[1], 80, timeout=5); "
        "c.request('GET', '/some/path?x=1'); r=c.getresponse(); print(r.status, r.getheader('Location'))",
        LBS[0],
    )
    assert redirect == f"301 https://{LBS[0]}/some/path?x=1"
    headers = http_get(host(CLIENT), f"https://{LBS[0]}/")["headers"]
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert "server" not in headers


def test_oversized_request_bodies_are_refused():
    # Announce an 11 MiB body: the balancer refuses it from the headers, before reading it.
    status = host(CLIENT).check_output(
        "python3 -c %s %s",
        "import http.client, ssl, sys; "
        "c = http.client.HTTPSConnection(sys.argv[1], 443, timeout=5, context=ssl._create_unverified_context()); "
        "c.putrequest('POST', '/api/notes'); c.putheader('Content-Length', str(11 * 1024 * 1024)); "
        "c.putheader('Content-Type', 'text/plain'); c.endheaders(); print(c.getresponse().status)",
        LBS[0],
    )
    assert status == "413"


def test_backends_are_checked_and_reached_over_verified_tls():
    cfg = host(LBS[0]).file("/etc/haproxy/haproxy.cfg").content_string
    assert "ssl verify required ca-file" in cfg
    for web in WEBS:
        assert f"verifyhost {web}" in cfg
        assert "ssl_certificate" in host(web).file("/etc/nginx/nginx.conf").content_string


def test_switching_the_backend_transport_is_not_undone_by_saved_server_states():
    """HAProxy saves server states across reloads; a saved plain-HTTP state must not survive
    a switch to TLS (it would send plain HTTP to nginx's TLS port while the checks pass)."""
    apply = ["molecule/resources/apply_role.yml", "-e", "roles=pki,haproxy", "-e", f"target={LBS[0]}"]
    lb = host(LBS[0])
    try:
        plain = run_playbook(*apply, "-e", "haproxy_backend_tls=false", "-e", "haproxy_backend_port=80")
        assert plain.returncode == 0, plain.stdout[-3000:]
        assert "tls=false" in lb.file("/etc/haproxy/backend-transport").content_string
    finally:
        back = run_playbook(*apply, "-e", "haproxy_backend_tls=true", "-e", "haproxy_backend_port=443")
    assert back.returncode == 0, back.stdout[-3000:]

    def all_up():
        rows = [r for r in haproxy_stat(lb) if r["pxname"] == "webservers" and r["svname"] != "BACKEND"]
        return rows and all(r["status"] == "UP" for r in rows)

    assert wait_for(all_up, timeout=30)
    client = host(CLIENT)
    answers = [http_get(client, f"https://{LBS[0]}/") for _request in range(2 * len(WEBS))]
    assert [a["status"] for a in answers] == [200] * len(answers)
    assert {a["headers"]["x-served-by"] for a in answers} == set(WEBS)


def test_replication_runs_over_tls_and_the_account_refuses_plain_connections():
    for replica in REPLICAS:
        status = host(replica).check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")
        assert "Master_SSL_Allowed: Yes" in status
        assert "Master_SSL_Verify_Server_Cert: Yes" in status
        assert "Slave_IO_Running: Yes" in status
    # One account per database host, each requiring TLS.
    assert set(sql(PRIMARY, "SELECT ssl_type FROM mysql.user WHERE user = 'repl'").split()) == {"ANY"}
    password = hostvars(REPLICAS[0])["mysql_replication_password"]
    replica = host(REPLICAS[0])
    primary_addr = replica.check_output("getent hosts %s | cut -d' ' -f1", PRIMARY).split()[0]
    plain = replica.run("mariadb --skip-ssl -h %s -P %s -u repl -p%s -e 'SELECT 1'", primary_addr, str(DB), password)
    assert plain.rc != 0 and "Access denied" in plain.stderr
    tls = replica.run(
        "mariadb --ssl --ssl-ca=/etc/mysql/tls/ca.pem --ssl-verify-server-cert -h %s -P %s -u repl -p%s -N -e %s",
        primary_addr,
        str(DB),
        password,
        "SHOW STATUS LIKE 'Ssl_version'",
    )
    assert tls.rc == 0, tls.stderr
    assert "TLSv1.3" in tls.stdout or "TLSv1.2" in tls.stdout


def test_the_replication_account_exists_for_the_database_hosts_only():
    """One account per database host's address (any of them may become primary), none for other
    hosts: the password does not open the server to a host that is not a database host (lb-01, the
    backup host, may reach the port for the archive's own account)."""
    addresses = {
        host(name).check_output("getent hosts %s | cut -d' ' -f1", name).split()[0] for name in [PRIMARY, *REPLICAS]
    }
    for name in [PRIMARY, *REPLICAS]:
        assert set(sql(name, "SELECT host FROM mysql.user WHERE user = 'repl'").split()) == addresses
    password = hostvars(REPLICAS[0])["mysql_replication_password"]
    outsider = groups()["backups"][0]
    assert outsider not in [PRIMARY, *REPLICAS]
    primary_addr = host(outsider).check_output("getent hosts %s | cut -d' ' -f1", PRIMARY).split()[0]
    refused = host(outsider).run(
        "mariadb --ssl --skip-ssl-verify-server-cert -h %s -P %s -u repl -p%s -N -e 'SELECT 1'",
        primary_addr,
        str(DB),
        password,
    )
    assert refused.rc != 0 and ("Access denied" in refused.stderr or "not allowed" in refused.stderr), refused


@pytest.mark.parametrize("name", [PRIMARY, *REPLICAS])
def test_database_listens_on_its_private_address_only_and_root_uses_the_socket(name):
    h = host(name)
    local = [line.split()[3] for line in h.check_output("ss -Hltn 'sport = :%s'", str(DB)).splitlines()]
    address = h.interface("eth0").addresses[0]
    assert local == [f"{address}:{DB}"]
    assert sql(name, "SELECT CONCAT(user, '@', host) FROM mysql.user WHERE user = 'root'").split() == ["root@localhost"]
    assert sql(name, "SELECT COUNT(*) FROM mysql.user WHERE user = ''").strip() == "0"
    assert "test" not in sql(name, "SHOW DATABASES").split()
    key = h.file("/etc/mysql/tls/server.key")
    assert key.mode == 0o640 and key.user == "root" and key.group == "mysql"


@pytest.mark.parametrize(
    "name, path, mode",
    [(lb, "/etc/haproxy/tls/site.pem", 0o600) for lb in LBS]
    + [(web, "/etc/nginx/tls/server.key", 0o600) for web in WEBS],
)
def test_keys_are_root_only(name, path, mode):
    f = host(name).file(path)
    assert f.mode == mode and f.user == "root"


def test_no_secret_appears_in_the_ansible_output():
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    text = log.read_text()
    assert "PLAY RECAP" in text and "mysql_replication" in text  # the converge output is there
    secrets = [hostvars(PRIMARY)[v] for v in PASSWORDS]
    for secret in secrets:
        assert secret not in text
    assert "PRIVATE KEY" not in text


PASSWORDS = (
    "mysql_replication_password",
    "mysql_replication_app_writer_password",
    "mysql_replication_app_reader_password",
    "haproxy_stats_password",
    "exporters_mysqld_password",
    "backup_binlog_password",
    "monitoring_web_password",
)


def test_the_scenario_passwords_hold_what_option_files_and_shells_treat_specially():
    """The other tests (replication, application writes, the exporter's metrics, the archive,
    the statistics page, Prometheus' and Alertmanager's login) run with these passwords: each
    holds #, ;, both quotes and a space."""
    for name in PASSWORDS:
        password = hostvars(PRIMARY)[name]
        assert all(c in password for c in "#;\"' "), name
    cnf = host(PRIMARY).file("/etc/prometheus/mysqld-exporter.cnf").content_string
    assert f"password=`{hostvars(PRIMARY)['exporters_mysqld_password']}`" in cnf


def _cert(names, key, days=(-1, 30)):
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def _pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
NAMES = ["lb-01", "localhost"]


@pytest.mark.platform_independent
@pytest.mark.parametrize(
    "cert, key, expected",
    [
        (_cert(NAMES, KEY), OTHER, "does not match its private key (haproxy_tls_private_key)"),
        (_cert(NAMES, KEY, days=(-30, -1)), KEY, "expired on"),
        (_cert(["www.example.com"], KEY), KEY, "does not cover lb-01, localhost (haproxy_server_names"),
    ],
    ids=["key-mismatch", "expired", "wrong-names"],
)
def test_bad_certificate_is_refused_before_any_change(tmp_path, cert, key, expected):
    before = host(LBS[0]).file("/etc/haproxy/tls/site.pem").sha256sum
    extra = tmp_path / "tls.json"
    extra.write_text(json.dumps({"haproxy_tls_certificate": cert, "haproxy_tls_private_key": _pem(key)}))
    result = run_playbook(
        "molecule/resources/apply_role.yml", "-e", "roles=pki,haproxy", "-e", f"target={LBS[0]}", "-e", f"@{extra}"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output[-3000:]
    assert "PRIVATE KEY" not in output
    assert host(LBS[0]).file("/etc/haproxy/tls/site.pem").sha256sum == before


@pytest.mark.platform_independent
@pytest.mark.parametrize(
    "extra, limit, expected",
    [
        ({"webinfra_lab": False, "webinfra_admin_networks": []}, LBS[0], "would lock SSH out"),
        (
            {"webinfra_lab": False, "webinfra_admin_networks": ["10.0.0.0/8", "bogus"]},
            LBS[0],
            "not an address or CIDR network: bogus",
        ),
        (
            # The scenario's own passwords are not lab defaults: give one that is.
            {
                "webinfra_lab": False,
                "webinfra_admin_networks": ["10.0.0.0/8"],
                "mysql_replication_password": "molecule-repl-password",
            },
            PRIMARY,
            "mysql_replication_password is a lab default or shorter than 12 characters (on web-01, web-02)",
        ),
        ({"webinfra_lab": False, "webinfra_admin_networks": ["10.0.0.0/8"]}, LBS[0], "haproxy_tls_internal_ca"),
        (
            {"webinfra_lab": False, "webinfra_admin_networks": ["10.0.0.0/8"], "firewall_enabled": False},
            LBS[0],
            "firewall_disabled_reason",
        ),
    ],
    ids=["no-admin-networks", "bad-network", "lab-passwords", "internal-ca-outside-lab", "firewall-off"],
)
def test_insecure_settings_are_refused_outside_the_lab(tmp_path, extra, limit, expected):
    # Outside the lab the site needs its own certificate (the first play's one refusal would name
    # it first): given, except where its absence is the point.
    if "tls_internal_ca" not in expected:
        extra = {"haproxy_tls_certificate": _cert(NAMES, KEY), "haproxy_tls_private_key": _pem(KEY), **extra}
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    result = run_playbook("site.yml", "--limit", limit, "--tags", "preflight", "-e", f"@{extra_file}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output[-3000:]
    assert "changed=0" in output[output.rindex("PLAY RECAP") :]
