# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ACME agent of the load balancers: one certificate for the site, the same on every balancer.

    python3 -m ...acme_agent ensure  CONFIG [--force]   on the issuer (the systemd timer, site.yml)
    python3 -m ...acme_agent receive CONFIG             on the other balancers (SSH forced command)
    python3 -m ...acme_agent status  CONFIG             what is installed (JSON)

`ensure` asks lego for a certificate when there is none or it no longer covers the names, else
renews it when it expires within `renew_days` (or at once with --force). lego answers the
HTTP-01 challenge on `http_listen`, where every balancer's HAProxy routes
/.well-known/acme-challenge/ (whichever balancer the CA reaches). The certificate is then
installed here and pushed over SSH to each peer, whose forced command runs `receive`.

Installing a certificate: it must parse, match its key and cover the names; it goes into place
atomically, `haproxy -c` must accept the configuration with it (else the old file is put back),
then the running HAProxy takes it through the runtime API (`set ssl cert` + `commit ssl cert`),
without a reload: no connection is dropped.

CONFIG (JSON, root-only, written by the acme role): server, email, domains, key_type, path,
http_listen, ca_file, renew_days, site_pem, haproxy_cfg, socket, peers ([{name, address}]),
ssh_key, known_hosts, lego.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys

from ansible_collections.webinfra.distributed.plugins.module_utils.haproxy_runtime import RuntimeClient
from webinfra_agents.kit.files import write_atomic

PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)
# A certificate bundle with its key is a few kilobytes; more on stdin is not one.
MAX_PEM = 65536
FORCE_DAYS = 100000


class AcmeError(Exception):
    """A failure the operator can act on (printed without a traceback)."""


def pem_blocks(text):
    """[(type, normalised PEM block)] in order; blank lines inside blocks removed."""
    out = []
    for kind, body in PEM_BLOCK.findall(text or ""):
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        out.append((kind, "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, "\n".join(lines), kind)))
    return out


def split_bundle(text):
    """(certificates, private key) of a PEM bundle: the site certificate first, then its chain."""
    blocks = pem_blocks(text)
    certs = [block for kind, block in blocks if kind == "CERTIFICATE"]
    keys = [block for kind, block in blocks if kind.endswith("PRIVATE KEY")]
    if not certs:
        raise AcmeError("the bundle holds no certificate")
    if len(keys) != 1:
        raise AcmeError("the bundle must hold exactly one private key, holds %d" % len(keys))
    return certs, keys[0]


def bundle(certs, key):
    """The one file HAProxy loads: certificate, chain, key; no blank line (the runtime API's
    payload ends at the first one)."""
    return "".join(certs) + key


def fingerprint(cert_pem):
    """SHA-256 of the certificate's DER form, as openssl prints it (AB:CD:...)."""
    blocks = [block for kind, block in pem_blocks(cert_pem) if kind == "CERTIFICATE"]
    if not blocks:
        raise AcmeError("no certificate to fingerprint")
    body = "".join(blocks[0].splitlines()[1:-1])
    digest = hashlib.sha256(base64.b64decode(body)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def parse_san(text):
    """DNS names of `openssl x509 -noout -ext subjectAltName` output."""
    return sorted(set(re.findall(r"DNS:([^,\s]+)", text or "")))


def uncovered(names, wanted):
    """The wanted names a certificate for `names` does not cover (one-label wildcards count)."""
    have = [n.lower() for n in names]
    missing = []
    for wanted_name in wanted:
        name = wanted_name.lower()
        parent = name.split(".", 1)[1] if "." in name else ""
        if name not in have and ("*." + parent) not in have:
            missing.append(name)
    return missing


def lego_file_name(domain):
    """The file name lego gives the first domain's certificate (certificates/<name>.crt)."""
    return domain.replace("*", "_")


def cert_paths(cfg):
    base = os.path.join(cfg["path"], "certificates", lego_file_name(cfg["domains"][0]))
    return base + ".crt", base + ".key"


def lego_command(cfg, action, force=False):
    """The lego command line: `run` for a new certificate, `renew` for the one in place."""
    argv = [cfg.get("lego") or "lego", "--accept-tos", "--server", cfg["server"], "--path", cfg["path"]]
    argv += ["--key-type", cfg.get("key_type") or "ec256", "--http", "--http.port", cfg["http_listen"]]
    if cfg.get("email"):
        argv += ["--email", cfg["email"]]
    for domain in cfg["domains"]:
        argv += ["--domains", domain]
    if action == "run":
        return argv + ["run"]
    days = FORCE_DAYS if force else int(cfg.get("renew_days") or 30)
    # The timer spreads the runs (RandomizedDelaySec); lego's own random sleep would only delay.
    return argv + ["renew", "--days", str(days), "--no-random-sleep"]


def lego_env(cfg, base=None):
    env = dict(os.environ if base is None else base)
    if cfg.get("ca_file"):
        # The ACME server's HTTPS is verified against this CA too (a private or test CA).
        env["LEGO_CA_CERTIFICATES"] = cfg["ca_file"]
    return env


def plan(current_names, domains):
    """`run` when there is no certificate or it does not cover the names, else `renew`."""
    if current_names is None or uncovered(current_names, domains):
        return "run"
    return "renew"


class Host:
    """What the agent does to its host, behind one object the tests replace."""

    def run(self, argv, stdin=None, env=None, check=True):
        proc = subprocess.run(
            argv,
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AcmeError("%s failed (exit %d): %s" % (argv[0], proc.returncode, (proc.stderr or proc.stdout)[-800:]))
        return proc

    def read(self, path):
        try:
            with open(path) as handle:
                return handle.read()
        except OSError:
            return None

    def write(self, path, text):
        """Atomic replace, mode 0600 from the start."""
        write_atomic(path, text, 0o600)

    def runtime(self, socket_path, line):
        return RuntimeClient(socket_path, timeout=10).command(line)


def openssl_names(host, cert_pem):
    out = host.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], stdin=cert_pem).stdout
    return parse_san(out)


def check_bundle(host, text, domains):
    """(certs, key) of a bundle fit to serve `domains`; AcmeError says why not."""
    certs, key = split_bundle(text)
    cert_key = host.run(["openssl", "x509", "-noout", "-pubkey"], stdin=certs[0]).stdout.strip()
    key_pub = host.run(["openssl", "pkey", "-pubout"], stdin=key).stdout.strip()
    if cert_key != key_pub:
        raise AcmeError("the certificate does not match its private key")
    expired = host.run(["openssl", "x509", "-noout", "-checkend", "0"], stdin=certs[0], check=False)
    if expired.returncode != 0:
        raise AcmeError("the certificate has expired")
    missing = uncovered(openssl_names(host, certs[0]), domains)
    if missing:
        raise AcmeError("the certificate does not cover %s" % ", ".join(missing))
    return certs, key


def install(host, cfg, text):
    """Put a bundle in place and into the running HAProxy; True when it changed anything."""
    certs, key = check_bundle(host, text, cfg["domains"])
    new = bundle(certs, key)
    path = cfg["site_pem"]
    old = host.read(path)
    if old == new:
        return False
    host.write(path, new)
    checked = host.run(["haproxy", "-c", "-q", "-f", cfg["haproxy_cfg"]], check=False)
    if checked.returncode != 0:
        if old is not None:
            host.write(path, old)
        raise AcmeError(
            "haproxy -c refused the configuration with the new certificate (the old one is back in place): %s"
            % (checked.stderr or checked.stdout)[-800:]
        )
    running = host.run(["systemctl", "is-active", "--quiet", "haproxy"], check=False).returncode == 0
    if running:
        update_running(host, cfg, new)
    return True


def update_running(host, cfg, new):
    """The running HAProxy serves the new certificate from its next handshake (runtime API),
    else after a reload (hitless: the old process finishes its connections)."""
    path = cfg["site_pem"]
    try:
        answer = host.runtime(cfg["socket"], "set ssl cert %s <<\n%s" % (path, new))
        if "transaction" not in answer.lower():
            raise AcmeError("set ssl cert: %s" % answer.strip()[:300])
        answer = host.runtime(cfg["socket"], "commit ssl cert %s" % path)
        if "success" not in answer.lower():
            host.runtime(cfg["socket"], "abort ssl cert %s" % path)
            raise AcmeError("commit ssl cert: %s" % answer.strip()[:300])
    # Any runtime failure: the file is in place, a (hitless) reload loads it.
    except Exception:  # pylint: disable=broad-except
        host.run(["systemctl", "reload", "haproxy"])


def push(host, cfg, peer, text):
    """Send the bundle to one peer; its forced command installs it. Returns its JSON answer."""
    argv = [
        "ssh",
        "-i",
        cfg["ssh_key"],
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=%s" % cfg["known_hosts"],
        "-o",
        "ConnectTimeout=10",
        "-p",
        str(cfg.get("ssh_port") or 22),
        "root@%s" % peer["address"],
        "webinfra-acme-receive",
    ]
    proc = host.run(argv, stdin=text, check=False)
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = {"error": (proc.stderr or proc.stdout or "no answer").strip()[-400:]}
    if proc.returncode != 0 and "error" not in answer:
        answer["error"] = "exit %d" % proc.returncode
    return answer


def ensure(host, cfg, force=False):
    crt_path, key_path = cert_paths(cfg)
    before = host.read(crt_path)
    names = openssl_names(host, before) if before else None
    action = plan(names, cfg["domains"])
    host.run(lego_command(cfg, action, force and action == "renew"), env=lego_env(cfg))
    after = host.read(crt_path)
    key = host.read(key_path)
    if not after or not key:
        raise AcmeError("lego left no certificate at %s" % crt_path)
    text = after + key
    result = {
        "action": action,
        "renewed": after != before,
        "fingerprint": fingerprint(after),
        "installed": install(host, cfg, text),
        "peers": {},
    }
    failed = []
    for peer in cfg.get("peers") or []:
        answer = push(host, cfg, peer, text)
        result["peers"][peer["name"]] = answer
        if answer.get("error"):
            failed.append("%s: %s" % (peer["name"], answer["error"]))
    result["changed"] = (
        result["renewed"] or result["installed"] or any(a.get("installed") for a in result["peers"].values())
    )
    if failed:
        result["error"] = "the certificate did not reach every balancer: " + "; ".join(failed)
    return result


def receive(host, cfg, text):
    if len(text) > MAX_PEM:
        raise AcmeError("more than %d bytes on stdin: not a certificate bundle" % MAX_PEM)
    installed = install(host, cfg, text)
    return {"installed": installed, "fingerprint": fingerprint(text)}


def status(host, cfg):
    current = host.read(cfg["site_pem"]) or ""
    out = {"site_pem": cfg["site_pem"], "fingerprint": None, "names": []}
    if "CERTIFICATE" in current:
        out["fingerprint"] = fingerprint(current)
        out["names"] = openssl_names(host, current)
        out["not_after"] = host.run(["openssl", "x509", "-noout", "-enddate"], stdin=current).stdout.strip()
    return out


def load_config(path):
    with open(path) as handle:
        cfg = json.load(handle)
    for key in ("server", "domains", "path", "http_listen", "site_pem", "haproxy_cfg", "socket"):
        if not cfg.get(key):
            raise AcmeError("%s: '%s' is missing" % (path, key))
    return cfg


def _emit(result, out=None):
    (out or sys.stdout).write(json.dumps(result, sort_keys=True) + "\n")


def main(argv=None, host=None, stdin=None):
    parser = argparse.ArgumentParser(prog="webinfra-acme")
    parser.add_argument("command", choices=["ensure", "receive", "status"])
    parser.add_argument("config")
    parser.add_argument("--force", action="store_true", help="renew now, whatever the expiry date")
    args = parser.parse_args(argv)
    host = host or Host()
    try:
        cfg = load_config(args.config)
        if args.command == "ensure":
            result = ensure(host, cfg, force=args.force)
        elif args.command == "receive":
            result = receive(host, cfg, (stdin or sys.stdin).read(MAX_PEM + 1))
        else:
            result = status(host, cfg)
    except AcmeError as exc:
        _emit({"error": str(exc)})
        return 1
    _emit(result)
    return 1 if result.get("error") else 0
