"""webinfra lab: real Debian hosts as systemd containers under podman.

One tool for the local lab (`make lab`) and for Molecule (the scenarios' create/destroy
playbooks call it). It reads the hosts from an Ansible inventory, builds the base image
when it is missing, creates one privileged systemd container per host on a dedicated podman
network, and removes only what it labelled.

Inventory variables read (all optional, set them under `all:vars`):

  webinfra_lab_name     lab name: network name and container-name prefix (default: webinfra-lab)
  webinfra_lab_debian   Debian major release of the image: 13 (default) or 12
  webinfra_lab_publish  per host, list of "127.0.0.1:HOSTPORT:CONTAINERPORT" to publish

A host's container is named "<lab name>-<inventory hostname>" (write it as the host's literal
ansible_host: a templated one renders for the wrong host under delegate_to); its hostname and
network alias are the inventory hostname, so hosts reach each other by inventory name.

Only the Python standard library is used: the tool runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

LABEL = "io.webinfra.managed"
LABEL_LAB = "io.webinfra.lab"
LABEL_HOST = "io.webinfra.host"
RELEASES = {"13": "trixie", "12": "bookworm"}
DEFAULT_DEBIAN = "13"
DEFAULT_LAB = "webinfra-lab"
BASE_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "iproute2",
    "procps",
    "sudo",
    "ca-certificates",
    "openssh-server",
]
# Bumped when BASE_PACKAGES change: an image of an older version is rebuilt.
IMAGE_VERSION = "2"
# Processes here lack CAP_SYS_RESOURCE: podman's default rlimits fail, these work.
ULIMITS = ["nofile=20000:20000", "nproc=8192:8192"]
HOST_PACKAGES = {
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
# Ansible reaches the hosts over SSH (pipelining, multiplexed connections): a key of the lab
# and one ssh_config per lab, mapping each container name to its address.
SSH_DIR = Path.home() / ".cache" / "webinfra" / "ssh"
# Each lab's SSH control sockets (the inventories set ansible_control_path_dir to
# CONTROL_DIR/<lab>): removing or re-creating a lab's hosts ends the masters found there, so a
# new run never multiplexes into a connection to a removed container.
CONTROL_DIR = SSH_DIR / "cp"
# Taken while host packages are installed or a base image is built: several runs at once (the
# two Molecule lanes, `make lab` beside `make test`) wait for each other instead of racing for
# dpkg's lock or building the same image twice.
HOST_LOCK = Path.home() / ".cache" / "webinfra" / "host-setup.lock"
# apt waits this long for dpkg's lock (another apt run, unattended-upgrades) instead of failing.
APT_LOCK_TIMEOUT = 600


class LabError(Exception):
    """A failure the user can act on; printed without a traceback."""


def log(msg: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, text=True, capture_output=capture, check=False, **kw)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{detail}")
    return proc


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    return run(["podman", *args], check=check, capture=capture)


def image_name(debian: str) -> str:
    return f"localhost/webinfra-debian{debian}:{IMAGE_VERSION}"


# ---------------------------------------------------------------------------------------------
# host dependencies


@contextlib.contextmanager
def host_setup_lock(what: str, path: Path | None = None):
    """Hold the machine-wide lock for host set-up (an exclusive flock on HOST_LOCK)."""
    path = path or HOST_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another lab run to finish its host set-up ({what})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing_host_packages(python_venv: bool = False) -> list[str]:
    missing = sorted({pkg for binary, pkg in HOST_PACKAGES.items() if shutil.which(binary) is None})
    if python_venv:
        missing.append(f"python3.{sys.version_info.minor}-venv")
    return missing


def apt_command(*args: str) -> list[str]:
    return ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}", *args]


def apt_install(missing: Callable[[], list[str]], what: str) -> None:
    """Install the Debian packages `missing()` names, under the host set-up lock; `missing` is
    asked again once the lock is held (another run may have installed them meanwhile)."""
    if not missing():
        return
    with host_setup_lock(what):
        packages = missing()
        if not packages:
            return
        prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
        if prefix and shutil.which("sudo") is None:
            raise LabError(f"missing {', '.join(packages)} and not root: install them or run as root")
        log(f"installing {', '.join(packages)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run([*prefix, *apt_command("update", "-q")], capture=False, env=env)
        run([*prefix, *apt_command("install", "-y", "-q", *packages)], capture=False, env=env)


def ensure_host_packages(python_venv: bool = False) -> None:
    apt_install(lambda: missing_host_packages(python_venv), "host packages")


def ensure_shellcheck() -> None:
    apt_install(lambda: [] if shutil.which("shellcheck") else ["shellcheck"], "shellcheck")


# ---------------------------------------------------------------------------------------------
# apt sources: the machine's own mirror, never a hard-coded host name


def parse_deb822(text: str) -> list[dict[str, str]]:
    stanzas, cur = [], {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur = {}
            continue
        if line.startswith("#") or line[0].isspace():
            continue
        key, _sep, value = line.partition(":")
        cur[key.strip().lower()] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def host_mirrors(sources_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """Return (main mirror URI, security mirror URI) configured for the machine's Debian."""
    main = security = None
    for path in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        for st in parse_deb822(path.read_text()):
            if st.get("enabled", "yes").lower() == "no" or "deb" not in st.get("types", "").split():
                continue
            uri = st.get("uris", "").split()[0] if st.get("uris") else ""
            suites = st.get("suites", "").split()
            if not uri or "debian" not in st.get("signed-by", "") + uri:
                continue
            if any(s.endswith("-security") for s in suites):
                security = security or uri
            elif suites:
                main = main or uri
    legacy = sources_dir / "sources.list"
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if not m or "debian" not in m.group(1):
                continue
            if m.group(2).endswith("-security"):
                security = security or m.group(1)
            else:
                main = main or m.group(1)
    if not main:
        raise LabError("no Debian mirror found in /etc/apt sources; pass --mirror URI")
    return main, security or main.rstrip("/") + "-security"


def render_sources(codename: str, mirror: str, security: str) -> str:
    return (
        "Types: deb\n"
        f"URIs: {mirror}\n"
        f"Suites: {codename} {codename}-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\n"
        f"URIs: {security}\n"
        f"Suites: {codename}-security\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


# ---------------------------------------------------------------------------------------------
# image


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def build_image(debian: str, mirror: str | None = None, force: bool = False) -> str:
    name = image_name(debian)
    if image_exists(name) and not force:
        return name
    with host_setup_lock(f"image {name}"):
        # Built by another run while this one waited.
        if image_exists(name) and not force:
            return name
        return _build_image(name, debian, mirror)


def _build_image(name: str, debian: str, mirror: str | None) -> str:
    codename = RELEASES[debian]
    main, security = host_mirrors()
    if mirror:
        main = mirror
    log(f"building {name} from Debian {debian} ({codename}) via {main}; takes a minute or two")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="webinfra-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                codename,
                str(rootfs),
                main,
            ],
            capture=False,
            stdout=subprocess.DEVNULL,
        )
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(render_sources(codename, main, security))
        # Fails inside a container and leaves systemd "degraded" (Debian 13); useless here.
        for unit in ("systemd-modules-load.service", "getty@tty1.service"):
            link = rootfs / "etc/systemd/system" / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        (rootfs / "etc/machine-id").write_text("")
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run(
            [
                "podman",
                "import",
                "--change",
                'CMD ["/sbin/init"]',
                "--change",
                f"LABEL {LABEL}=true",
                "--change",
                "STOPSIGNAL SIGRTMIN+3",
                "-",
                name,
            ],
            stdin=tar.stdout,
        )
        tar.wait()
    log(f"built {name} in {time.time() - started:.0f} s")
    return name


# ---------------------------------------------------------------------------------------------
# inventory


def read_inventory(inventory: str) -> dict:
    exe = shutil.which("ansible-inventory")
    if exe is None:
        venv_exe = Path(sys.executable).parent / "ansible-inventory"
        exe = str(venv_exe) if venv_exe.exists() else None
    if exe is None:
        raise LabError("ansible-inventory not found: run from the project's venv (make venv)")
    # The inventory holds variables (lab passwords too): keep its dump out of any Ansible log.
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_LOG_PATH"}
    data = json.loads(run([exe, "-i", inventory, "--list"], env=env).stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    hosts = sorted(hostvars) or sorted({h for g, v in data.items() if isinstance(v, dict) for h in v.get("hosts", [])})
    if not hosts:
        raise LabError(f"inventory {inventory} names no hosts")
    return {h: hostvars.get(h, {}) for h in hosts}


def lab_settings(hosts: dict, lab: str | None, debian: str | None) -> tuple[str, str]:
    first = next(iter(hosts.values()))
    lab = lab or first.get("webinfra_lab_name") or DEFAULT_LAB
    debian = str(debian or os.environ.get("WEBINFRA_DEBIAN") or first.get("webinfra_lab_debian") or DEFAULT_DEBIAN)
    if debian not in RELEASES:
        raise LabError(f"Debian release {debian!r} is not supported; allowed: {', '.join(RELEASES)}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", lab):
        raise LabError(f"lab name {lab!r} must be lower-case letters, digits, '.', '_' or '-'")
    return lab, debian


# ---------------------------------------------------------------------------------------------
# containers


def labelled(kind: str, lab: str | None) -> list[dict]:
    # The lab label is set by `up` itself: a container someone started from the lab's image
    # inherits the image's io.webinfra.managed label, but it is not ours to remove.
    filters = ["--filter", f"label={LABEL}=true"]
    filters += ["--filter", f"label={LABEL_LAB}={lab}" if lab else f"label={LABEL_LAB}"]
    if kind == "container":
        out = podman("ps", "-a", *filters, "--format", "json").stdout
    else:
        out = podman("network", "ls", *filters, "--format", "json").stdout
    return json.loads(out or "[]")


def ensure_network(lab: str) -> None:
    if podman("network", "exists", lab, check=False).returncode == 0:
        return
    podman("network", "create", "--label", f"{LABEL}=true", "--label", f"{LABEL_LAB}={lab}", lab)
    log(f"created network {lab}")


def container_state(name: str) -> str | None:
    proc = podman("inspect", "--type", "container", "--format", "{{.State.Status}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def create_container(lab: str, host: str, image: str, publish: list[str]) -> None:
    name = f"{lab}-{host}"
    args = [
        "--runtime",
        "runc",
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        host,
        "--network",
        lab,
        "--network-alias",
        host,
        "--privileged",
        "--systemd=always",
        "--label",
        f"{LABEL}=true",
        "--label",
        f"{LABEL_LAB}={lab}",
        "--label",
        f"{LABEL_HOST}={host}",
    ]
    for limit in ULIMITS:
        args += ["--ulimit", limit]
    for spec in publish:
        if not re.fullmatch(r"127\.0\.0\.1:\d+:\d+(/tcp|/udp)?", spec):
            raise LabError(f"{host}: webinfra_lab_publish entry {spec!r} must be 127.0.0.1:HOSTPORT:PORT")
        args += ["-p", spec]
    podman(*args, image, "/sbin/init")


def wait_booted(names: list[str], timeout: float = 90) -> None:
    deadline = time.time() + timeout
    pending = set(names)
    while pending and time.time() < deadline:
        for name in sorted(pending):
            state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    failed = podman("exec", name, "systemctl", "--failed", "--no-legend", check=False)
                    log(f"{name}: systemd degraded: {failed.stdout.strip()}")
                pending.discard(name)
        if pending:
            time.sleep(1)
    if pending:
        raise LabError(f"systemd did not finish booting in {timeout:.0f} s on: {', '.join(sorted(pending))}")


def ssh_key() -> Path:
    """The lab's SSH key (created once, 0600 in a 0700 directory); returns the private key."""
    SSH_DIR.mkdir(parents=True, exist_ok=True)
    SSH_DIR.chmod(0o700)
    key = SSH_DIR / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "webinfra-lab", "-f", str(key)])
    return key


def ssh_config_path(lab: str) -> Path:
    return SSH_DIR / f"{lab}.conf"


def container_address(name: str, lab: str) -> str:
    fmt = '{{(index .NetworkSettings.Networks "' + lab + '").IPAddress}}'
    address = podman("inspect", "--format", fmt, name).stdout.strip()
    if not address:
        raise LabError(f"{name}: no address on network {lab}")
    return address


def render_ssh_config(lab: str, addresses: dict[str, str], key: Path) -> str:
    lines = [f"# webinfra lab {lab}: written by tools/lab.py up", ""]
    for name, address in sorted(addresses.items()):
        lines += [f"Host {name}", f"    HostName {address}", ""]
    lines += [
        f"Host {lab}-*",
        "    User root",
        f"    IdentityFile {key}",
        "    IdentitiesOnly yes",
        # Lab containers are re-created with new host keys: never pinned.
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
        "    LogLevel ERROR",
        "",
    ]
    return "\n".join(lines)


def enable_ssh(lab: str, names: list[str], timeout: float = 30) -> dict[str, str]:
    """Authorize the lab key for root on each host, write the lab's ssh_config and wait until
    every host answers over SSH. Returns {container name: address}."""
    key = ssh_key()
    public = key.with_suffix(".pub").read_text()
    for name in names:
        authorize = "install -d -m 0700 /root/.ssh && cat > /root/.ssh/authorized_keys"
        run(["podman", "exec", "-i", name, "sh", "-c", authorize], input=public)
        podman("exec", name, "systemctl", "enable", "--now", "ssh", check=False)
    # Every running host of the lab, not only this inventory's (the benchmark adds a client).
    running = [c["Names"][0] for c in labelled("container", lab) if c.get("State") == "running"]
    addresses = {name: container_address(name, lab) for name in sorted(set(running) | set(names))}
    config = ssh_config_path(lab)
    config.write_text(render_ssh_config(lab, addresses, key))
    config.chmod(0o600)
    deadline = time.time() + timeout
    pending = set(names)
    while pending and time.time() < deadline:
        for name in sorted(pending):
            probe = run(["ssh", "-F", str(config), "-o", "ConnectTimeout=3", name, "true"], check=False)
            if probe.returncode == 0:
                pending.discard(name)
        if pending:
            time.sleep(1)
    if pending:
        raise LabError(f"no SSH answer within {timeout:.0f} s from: {', '.join(sorted(pending))}")
    return {name: addresses[name] for name in names}


def control_dir(lab: str) -> Path:
    return CONTROL_DIR / lab


def end_ssh_masters(lab: str | None) -> list[str]:
    """End the SSH control masters of a lab (of every lab when None) and remove their sockets.

    A master outlives its host by ControlPersist; a new run that multiplexes into a master whose
    container was removed waits forever. Returns the sockets that were removed."""
    dirs = [control_dir(lab)] if lab else sorted(CONTROL_DIR.glob("*"))
    removed = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        for sock in sorted(directory.iterdir()):
            if sock.is_socket() and shutil.which("ssh"):
                # The master answers its control socket even when its host is gone.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "webinfra-lab"], check=False, timeout=10)
            sock.unlink(missing_ok=True)
            removed.append(str(sock))
    return removed


def cmd_up(args) -> None:
    hosts = read_inventory(args.inventory)
    lab, debian = lab_settings(hosts, args.lab, args.debian)
    ensure_host_packages()
    image = build_image(debian, args.mirror)
    ensure_network(lab)
    for host, hv in hosts.items():
        name = f"{lab}-{host}"
        if hv.get("ansible_host", name) != name:
            raise LabError(f"{host}: ansible_host must be the container name {name!r} (is {hv['ansible_host']!r})")
    states = {host: container_state(f"{lab}-{host}") for host in hosts}
    if any(state != "running" for state in states.values()):
        # New or restarted hosts: no connection of an earlier run may be reused.
        for sock in end_ssh_masters(lab):
            log(f"ended SSH master {sock}")
    control_dir(lab).mkdir(parents=True, exist_ok=True, mode=0o700)
    started = []
    for host, hv in hosts.items():
        name = f"{lab}-{host}"
        state = states[host]
        if state is None:
            create_container(lab, host, image, list(hv.get("webinfra_lab_publish") or []))
            log(f"created {name} (Debian {debian})")
        elif state != "running":
            podman("start", name)
            log(f"started {name}")
        started.append(name)
    wait_booted(started)
    addresses = enable_ssh(lab, started)
    log(f"lab {lab}: {len(started)} host(s) up, SSH config {ssh_config_path(lab)}")
    if args.instance_config:
        # Molecule's instance config: how Ansible reaches each host (SSH, as root, with the lab key).
        config = [
            {
                "instance": host,
                "address": addresses[f"{lab}-{host}"],
                "user": "root",
                "port": 22,
                "identity_file": str(ssh_key()),
                "connection": "ssh",
            }
            for host in hosts
        ]
        Path(args.instance_config).write_text(json.dumps(config, indent=2) + "\n")


def remove_containers(names: list[str], attempts: int = 3) -> None:
    """`podman rm -f`, again for the containers still there: podman 4.3 can fail a forced removal
    when the container stops by itself between the stop timeout and the SIGKILL ("container state
    improper: stopped"); a second removal of the stopped container succeeds."""
    for attempt in range(1, attempts + 1):
        proc = podman("rm", "-f", "-t", "5", *names, check=False)
        names = [n for n in names if podman("container", "exists", n, check=False).returncode == 0]
        if not names:
            return
        if attempt == attempts:
            raise LabError(f"could not remove {', '.join(names)}: {proc.stderr.strip()}")
        log(f"removal of {', '.join(names)} failed ({proc.stderr.strip()[-200:]}); retrying")
        time.sleep(1)


def remove(lab: str | None, images: bool) -> None:
    containers = labelled("container", lab)
    names = [c["Names"][0] for c in containers]
    if names:
        remove_containers(names)
        log(f"removed {', '.join(names)}")
    for sock in end_ssh_masters(lab):
        log(f"ended SSH master {sock}")
    for net in labelled("network", lab):
        podman("network", "rm", "-f", net["name"] if "name" in net else net["Name"], check=False)
        log(f"removed network {net.get('name') or net.get('Name')}")
    if images:
        for debian in RELEASES:
            name = image_name(debian)
            if image_exists(name):
                labels = json.loads(podman("image", "inspect", name).stdout)[0].get("Labels") or {}
                if labels.get(LABEL) == "true":
                    podman("rmi", "-f", name)
                    log(f"removed image {name}")


def cmd_down(args) -> None:
    if shutil.which("podman") is None:
        end_ssh_masters(None if args.all else args.lab or DEFAULT_LAB)
        return
    lab = None
    if args.all:
        lab = None
    elif args.inventory:
        lab = lab_settings(read_inventory(args.inventory), args.lab, None)[0]
    else:
        lab = args.lab or DEFAULT_LAB
    remove(lab, args.images)


def cmd_status(args) -> None:
    if shutil.which("podman") is None:
        print("podman is not installed: no lab")
        return
    rows = []
    for c in labelled("container", args.lab):
        name = c["Names"][0]
        ip = ""
        if c.get("State") == "running":
            ip = podman(
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                name,
                check=False,
            ).stdout.strip()
        ports = ", ".join(
            f"{p.get('host_ip')}:{p.get('host_port')}->{p.get('container_port')}" for p in c.get("Ports") or []
        )
        rows.append((c.get("Labels", {}).get(LABEL_LAB, ""), name, c.get("State", ""), ip, ports))
    if not rows:
        print("no webinfra lab containers")
        return
    widths = [max(len(str(r[i])) for r in rows + [("LAB", "CONTAINER", "STATE", "ADDRESS", "PORTS")]) for i in range(5)]
    for r in [("LAB", "CONTAINER", "STATE", "ADDRESS", "PORTS"), *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def cmd_probe(args) -> None:
    """Send a few requests and print which backend answered each (proof of round robin)."""
    if not args.url.startswith(("http://", "https://")):
        raise LabError(f"--url must be an http(s) URL, not {args.url!r}")
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    if args.redirect_from:
        probe_redirect(args.redirect_from, args.url)
    seen = []
    for i in range(args.count):
        req = urllib.request.Request(args.url, headers={"Connection": "close"})  # noqa: S310 (scheme checked)
        try:
            with urllib.request.urlopen(req, timeout=5, context=context) as resp:  # noqa: S310
                if i == 0 and resp.headers.get("Strict-Transport-Security"):
                    print(f"  HSTS: {resp.headers['Strict-Transport-Security']}")
                served = resp.headers.get("X-Served-By", "?")
                print(f"  request {i + 1}: HTTP {resp.status} served by {served}")
                seen.append(served)
        except OSError as exc:
            raise LabError(f"request to {args.url} failed: {exc}") from exc
    if len(set(seen)) < min(args.expect, args.count):
        raise LabError(f"expected answers from {args.expect} backends, got {sorted(set(seen))}")
    if args.notes:
        probe_notes(args.url.rstrip("/") + "/api/notes", context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def probe_redirect(http_url: str, https_url: str) -> None:
    """Plain HTTP must answer with a permanent redirect to the HTTPS URL."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(http_url, timeout=5)
    except urllib.error.HTTPError as exc:
        location = exc.headers.get("Location", "")
        if exc.code in (301, 308) and location.startswith(https_url.rstrip("/")):
            print(f"  {http_url} redirects ({exc.code}) to {location}")
            return
        raise LabError(f"{http_url} answered {exc.code} {location!r}, expected a redirect to {https_url}") from exc
    except OSError as exc:
        raise LabError(f"request to {http_url} failed: {exc}") from exc
    raise LabError(f"{http_url} answered without redirecting to {https_url}")


def probe_notes(url: str, context=None) -> None:
    """Write a note through the balancer, then read it back (served by a replica when there is one)."""
    body = json.dumps({"body": f"written by make lab at {time.strftime('%H:%M:%S')}"}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:  # noqa: S310
            written = json.loads(resp.read())
    except OSError as exc:
        print(f"  database: not available ({exc})")
        return
    print(f"  database: note {written['id']} written on {written['db_host']} (via {written['written_by']})")
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/{written['id']}", timeout=5, context=context) as resp:  # noqa: S310
                read = json.loads(resp.read())
                print(f"  database: note {written['id']} read back from {read['db_host']}")
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # not replicated yet: 404 until it arrives
                raise LabError(f"reading note {written['id']} failed: {exc}") from exc
        time.sleep(0.2)
    raise LabError(f"note {written['id']} was not readable within 5 s")


def cmd_image(args) -> None:
    ensure_host_packages()
    for debian in args.debian or [DEFAULT_DEBIAN]:
        if debian not in RELEASES:
            raise LabError(f"Debian release {debian!r} is not supported; allowed: {', '.join(RELEASES)}")
        print(build_image(debian, args.mirror, force=args.force))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("deps", help="install podman, runc and debootstrap when missing")
    p.add_argument("--python-venv", action="store_true", help="also install Python's venv module")
    p.add_argument("--shellcheck", action="store_true", help="only shellcheck (ansible-test sanity's shell linter)")
    p.set_defaults(func=lambda a: ensure_shellcheck() if a.shellcheck else ensure_host_packages(a.python_venv))

    p = sub.add_parser("image", help="build the base image(s) when missing")
    p.add_argument("--debian", action="append", choices=sorted(RELEASES), help="13 (default) and/or 12")
    p.add_argument("--mirror", help="Debian mirror URI (default: the one apt on this machine uses)")
    p.add_argument("--force", action="store_true", help="rebuild even when present")
    p.set_defaults(func=cmd_image)

    p = sub.add_parser("up", help="create and start the hosts named in an inventory")
    p.add_argument("-i", "--inventory", required=True)
    p.add_argument("--lab", help="lab name (default: webinfra_lab_name from the inventory)")
    p.add_argument("--debian", choices=sorted(RELEASES), help="image release (default: inventory, then 13)")
    p.add_argument("--mirror", help="Debian mirror URI for an image build")
    p.add_argument("--instance-config", help="write Molecule's instance config (JSON) to this file")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("probe", help="send requests and show which backend answered")
    p.add_argument("--url", default="https://127.0.0.1:8443/")
    p.add_argument("--cafile", help="CA certificate to verify HTTPS with (the lab's internal CA)")
    p.add_argument("--redirect-from", help="also check that this plain-HTTP URL redirects to --url")
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--expect", type=int, default=1, help="fail unless this many backends answered")
    p.add_argument("--notes", action="store_true", help="also write a note and read it back (database tier)")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("down", help="remove a lab's containers and network (only labelled ones)")
    p.add_argument("-i", "--inventory")
    p.add_argument("--lab")
    p.add_argument("--all", action="store_true", help="every lab this tool created")
    p.add_argument("--images", action="store_true", help="also remove the base images this tool built")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="list the labelled containers")
    p.add_argument("--lab")
    p.set_defaults(func=cmd_status)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
