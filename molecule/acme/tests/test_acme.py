"""ACME certificates from pebble on the balancer pair: issued by the first site.yml run, the same on
both balancers, HTTP-01 answered whichever balancer the CA reaches, renewed under GET load on the
virtual IP without a failed request.

pebble (on the client, role acme_test_ca) makes a new root at every start: the tests read it from
its management API. pebble's DNS answers the site's name with the virtual IP; the client resolves
it the same way through /etc/hosts.
"""

import json

import pytest
from labhosts import PROJECT, groups, host, playbook_digest, run_playbook, wait_for

LBS = groups()["loadbalancers"]
ISSUER = LBS[0]
CLIENT = groups()["clients"][0]
NAME = "www.acme.webinfra.test"
ROOT = "/root/pebble-root.pem"
TOOL = "/usr/local/bin/webinfra-writeload"
CONFIG = "/etc/webinfra/acme.json"

# Prints the certificate a TLS server presents for NAME (DER as hex), verified against ROOT.
SERVED = """
import socket, ssl, sys, hashlib
address, name, root = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=root)
with socket.create_connection((address, 443), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
        issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
print(hashlib.sha256(der).hexdigest(), issuer.get("commonName", ""))
"""

# Prints the HTTP status of a challenge path and of the home page on plain HTTP (no redirects followed).
STATUS = """
import sys, urllib.error, urllib.request
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(Keep)
def status(path):
    request = urllib.request.Request("http://" + sys.argv[1] + path, headers={"Host": sys.argv[2]})
    try:
        return opener.open(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code
print(status("/.well-known/acme-challenge/x"), status("/"))
"""


def address(name):
    return host(name).check_output("hostname -I").split()[0]


def vip():
    conf = host(LBS[-1]).file("/etc/keepalived/keepalived.conf").content_string
    return conf.split("virtual_ipaddress {", 1)[1].split()[0].split("/")[0]


@pytest.fixture(scope="module")
def client():
    """The client with pebble's current root, the site's name on the virtual IP, and the load tool."""
    c = host(CLIENT)
    root = c.check_output(
        "python3 -c %s",
        "import ssl, urllib.request; print(urllib.request.urlopen('https://localhost:15000/roots/0', "
        "context=ssl._create_unverified_context()).read().decode())",
    )
    assert "BEGIN CERTIFICATE" in root
    c.check_output("printf '%%s\\n' %s > %s", root, ROOT)
    c.check_output(f"grep -q ' {NAME}$' /etc/hosts || echo '{vip()} {NAME}' >> /etc/hosts")
    source = (PROJECT / "tools" / "writeload.py").read_text()
    c.check_output("printf '%%s' %s > %s", source, TOOL)
    return c


def served(client, target):
    """(sha256 of the certificate, its issuer's CN) that `target` serves for NAME, verified with pebble's root."""
    out = client.check_output("python3 -c %s %s %s %s", SERVED, target, NAME, ROOT)
    digest, issuer = out.split(" ", 1)
    return digest, issuer


def test_the_first_run_serves_a_certificate_from_pebble_on_both_balancers_and_the_virtual_ip(client):
    seen = {name: served(client, address(name)) for name in LBS}
    seen["vip"] = served(client, vip())
    print(f"\nserved certificates: {seen}")
    assert len({pair[0] for pair in seen.values()}) == 1, seen
    assert all("Pebble" in pair[1] for pair in seen.values()), seen


def test_the_issuer_renews_on_a_timer_and_the_peers_accept_only_its_push():
    issuer, peers = host(ISSUER), [host(n) for n in LBS[1:]]
    assert issuer.service("webinfra-acme.timer").is_enabled and issuer.service("webinfra-acme.timer").is_running
    issuer_address = address(ISSUER)
    for peer in peers:
        assert not peer.file("/etc/systemd/system/webinfra-acme.timer").exists
        keys = peer.file("/root/.ssh/authorized_keys")
        line = next(x for x in keys.content_string.splitlines() if "webinfra-acme@" in x)
        assert line.startswith(f'restrict,from="{issuer_address}",command="/usr/local/sbin/webinfra-acme receive ')
        assert keys.mode == 0o600
    for lb in [issuer, *peers]:
        assert lb.file(CONFIG).mode == 0o600 and lb.file("/etc/haproxy/tls/site.pem").mode == 0o600
        assert lb.file("/var/lib/webinfra-acme").mode == 0o700
    # The state lego keeps (account key, certificate and key) is on the issuer only.
    assert issuer.file(f"/var/lib/webinfra-acme/certificates/{NAME}.key").exists
    assert not any(p.file("/var/lib/webinfra-acme/certificates").exists for p in peers)


def test_every_balancer_sends_challenges_to_the_issuer_and_redirects_the_rest(client):
    for name in LBS:
        challenge, page = client.check_output("python3 -c %s %s %s", STATUS, address(name), NAME).split()
        # lego listens only while it asks: the issuer's port refuses, HAProxy answers 503 (not a redirect).
        assert (challenge, page) == ("503", "301"), name


def test_a_peer_refuses_a_certificate_that_does_not_cover_the_names():
    peer = host(LBS[1])
    before = peer.file("/etc/haproxy/tls/site.pem").content_string
    made = peer.run(
        "cd /tmp && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem "
        "-days 2 -subj /CN=other.test -addext subjectAltName=DNS:other.test 2>/dev/null && cat c.pem k.pem "
        f"| /usr/local/sbin/webinfra-acme receive {CONFIG}"
    )
    assert made.rc == 1 and "does not cover www.acme.webinfra.test" in json.loads(made.stdout)["error"]
    assert peer.file("/etc/haproxy/tls/site.pem").content_string == before


def test_a_forced_renewal_under_load_on_the_virtual_ip_fails_no_request(client):
    before = served(client, vip())[0]
    since = host(ISSUER).check_output("date +%s")
    n = "renewal"
    client.run(f"rm -f /root/{n}.stop /root/{n}.ready /root/{n}.json")
    client.run(
        f"nohup python3 {TOOL} --url https://{NAME}/ --method GET --prefix {n} --cafile {ROOT} "
        f"--stop-file /root/{n}.stop --ready-file /root/{n}.ready --duration 300 > /root/{n}.json 2>/root/{n}.err &"
    )
    try:
        assert wait_for(lambda: client.file(f"/root/{n}.ready").exists, timeout=30), client.run(
            f"cat /root/{n}.err"
        ).stdout
        wait_for(lambda: False, timeout=2)
        renewal = host(ISSUER).run(f"/usr/local/sbin/webinfra-acme ensure {CONFIG} --force")
        assert renewal.rc == 0, renewal.stdout + renewal.stderr
        result = json.loads(renewal.stdout)
        assert result["renewed"] and result["installed"], result
        assert all(answer.get("installed") for answer in result["peers"].values()), result
        wait_for(lambda: False, timeout=3)
    finally:
        client.run(f"touch /root/{n}.stop")
    assert wait_for(lambda: client.file(f"/root/{n}.json").size > 0, timeout=30)
    load = json.loads(client.file(f"/root/{n}.json").content_string)
    after = {name: served(client, address(name))[0] for name in LBS}
    after["vip"] = served(client, vip())[0]
    print(
        f"\nforced renewal under load: {load['failed']} failed of {load['requests']} "
        f"(longest gap {load['max_gap_s']} s); renewal: {result}"
    )
    assert len(set(after.values())) == 1 and before not in after.values(), after
    assert load["failed"] == 0 and load["requests"] > 20, load
    # No reload on any balancer: HAProxy took the certificate through its runtime API.
    for name in LBS:
        journal = host(name).check_output(f"journalctl -u haproxy --since @{since} --no-pager")
        assert "Reloading" not in journal and "reexec" not in journal.lower(), (name, journal[-2000:])


def test_site_yml_after_the_renewal_keeps_the_renewed_certificate_and_changes_nothing(client):
    """The haproxy role writes the site certificate only when it is missing (the ACME agent keeps
    it up to date), and the renewal is not due again: a re-run changes nothing."""
    renewed = served(client, vip())[0]
    proc = run_playbook("playbooks/site.yml")
    assert proc.returncode == 0, playbook_digest(proc)
    recap = [line for line in proc.stdout.splitlines() if " : ok=" in line]
    assert recap and all(" changed=0 " in line for line in recap), "\n".join(recap)
    assert {served(client, address(name))[0] for name in LBS} == {renewed}
