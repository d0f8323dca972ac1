import fcntl
import http.server
import socket
import threading

import lab
import pytest

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def write_sources(tmp_path, deb822=None, legacy=None):
    (tmp_path / "sources.list.d").mkdir()
    if deb822 is not None:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    if legacy is not None:
        (tmp_path / "sources.list").write_text(legacy)
    return tmp_path


def test_mirrors_from_deb822(tmp_path):
    assert lab.host_mirrors(write_sources(tmp_path, DEB822)) == (
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    )


def test_mirrors_from_legacy_sources_list(tmp_path):
    legacy = (
        "deb [arch=amd64] http://m.example/debian bookworm main\n"
        "deb http://s.example/debian-security bookworm-security main\n"
    )
    assert lab.host_mirrors(write_sources(tmp_path, legacy=legacy)) == (
        "http://m.example/debian",
        "http://s.example/debian-security",
    )


def test_disabled_and_foreign_sources_ignored(tmp_path):
    text = "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nSigned-By: /x/nodesource.gpg\n\n"
    text += "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\nSigned-By: debian\n"
    with pytest.raises(lab.LabError, match="--mirror"):
        lab.host_mirrors(write_sources(tmp_path, text))


def test_rendered_sources_follow_the_target_release():
    text = lab.render_sources("trixie", "http://m/debian", "http://s/debian-security")
    stanzas = lab.parse_deb822(text)
    assert stanzas[0]["suites"] == "trixie trixie-updates"
    assert stanzas[1]["suites"] == "trixie-security"
    assert stanzas[1]["uris"] == "http://s/debian-security"


def test_lab_settings_defaults_and_validation():
    assert lab.lab_settings({"h": {}}, None, None) == ("webinfra-lab", "13")
    assert lab.lab_settings({"h": {"webinfra_lab_name": "x", "webinfra_lab_debian": 12}}, None, None) == ("x", "12")
    with pytest.raises(lab.LabError, match="allowed: 13, 12"):
        lab.lab_settings({"h": {}}, None, "11")
    with pytest.raises(lab.LabError, match="lab name"):
        lab.lab_settings({"h": {}}, "Bad Name", None)


def _serve(handler_status, location):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            self.send_response(handler_status)
            if location:
                self.send_header("Location", location)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_probe_redirect_accepts_a_permanent_redirect_to_https():
    server = _serve(301, "https://127.0.0.1:8443/")
    try:
        lab.probe_redirect(f"http://127.0.0.1:{server.server_port}/", "https://127.0.0.1:8443/")
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("status", "location"), [(200, None), (302, "https://127.0.0.1:8443/"), (301, "http://elsewhere/")]
)
def test_probe_redirect_refuses_anything_else(status, location):
    server = _serve(status, location)
    try:
        with pytest.raises(lab.LabError):
            lab.probe_redirect(f"http://127.0.0.1:{server.server_port}/", "https://127.0.0.1:8443/")
    finally:
        server.shutdown()


def test_ssh_config_maps_each_container_to_its_address_for_root_with_the_lab_key(tmp_path):
    key = tmp_path / "id_ed25519"
    text = lab.render_ssh_config("lab-x", {"lab-x-web-01": "10.89.0.3", "lab-x-lb-01": "10.89.0.2"}, key)
    blocks = text.split("\n\n")
    assert "Host lab-x-lb-01\n    HostName 10.89.0.2" in blocks
    assert "Host lab-x-web-01\n    HostName 10.89.0.3" in blocks
    common = next(b for b in blocks if b.startswith("Host lab-x-*"))
    assert "User root" in common and f"IdentityFile {key}" in common
    assert "StrictHostKeyChecking no" in common and "UserKnownHostsFile /dev/null" in common


def test_image_names_carry_the_image_version():
    assert lab.image_name("13") == f"localhost/webinfra-debian13:{lab.IMAGE_VERSION}"


class _Podman:
    """Fake podman: `rm` fails the first time and leaves the containers; `container exists` tells."""

    def __init__(self, failures):
        self.failures, self.present, self.calls = failures, set(), []

    def __call__(self, *args, check=True, capture=True):
        self.calls.append(args)
        if args[0] == "rm":
            names = [a for a in args[1:] if not a.startswith("-") and a != "5"]
            if self.failures:
                self.failures -= 1
                self.present.update(names)
                return lab.subprocess.CompletedProcess(args, 2, "", "container state improper: stopped")
            self.present.difference_update(names)
            return lab.subprocess.CompletedProcess(args, 0, "", "")
        if args[:2] == ("container", "exists"):
            return lab.subprocess.CompletedProcess(args, 0 if args[2] in self.present else 1, "", "")
        raise AssertionError(args)


def test_remove_containers_retries_a_failed_forced_removal(monkeypatch):
    fake = _Podman(failures=1)
    monkeypatch.setattr(lab, "podman", fake)
    monkeypatch.setattr(lab.time, "sleep", lambda _s: None)
    lab.remove_containers(["c1", "c2"])
    assert [c for c in fake.calls if c[0] == "rm"] == [("rm", "-f", "-t", "5", "c1", "c2")] * 2
    assert not fake.present


def test_remove_containers_gives_up_naming_what_is_left(monkeypatch):
    fake = _Podman(failures=5)
    monkeypatch.setattr(lab, "podman", fake)
    monkeypatch.setattr(lab.time, "sleep", lambda _s: None)
    with pytest.raises(lab.LabError, match="could not remove c1: container state improper"):
        lab.remove_containers(["c1"])


def test_host_setup_waits_for_another_run_holding_the_lock(tmp_path):
    path = tmp_path / "host-setup.lock"
    entered = threading.Event()

    def second_run():
        with lab.host_setup_lock("test", path):
            entered.set()

    with path.open("a") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        waiter = threading.Thread(target=second_run)
        waiter.start()
        assert not entered.wait(0.3), "the second run did not wait for the lock"
        fcntl.flock(first, fcntl.LOCK_UN)
    assert entered.wait(5), "the second run did not get the lock once it was released"
    waiter.join()


def test_host_packages_installed_once_when_another_run_installed_them_meanwhile(monkeypatch, tmp_path):
    monkeypatch.setattr(lab, "HOST_LOCK", tmp_path / "lock")
    answers = iter([["podman"], []])  # missing before the lock, installed by the time it is held
    monkeypatch.setattr(lab, "missing_host_packages", lambda python_venv=False: next(answers))
    calls = []
    monkeypatch.setattr(lab, "run", lambda cmd, **kw: calls.append(cmd))
    lab.ensure_host_packages()
    assert calls == []


def test_apt_waits_for_dpkg_lock_instead_of_failing():
    cmd = lab.apt_command("install", "-y", "podman")
    assert cmd[:3] == ["apt-get", "-o", f"DPkg::Lock::Timeout={lab.APT_LOCK_TIMEOUT}"]
    assert lab.APT_LOCK_TIMEOUT >= 300


def test_end_ssh_masters_removes_only_the_labs_control_sockets(monkeypatch, tmp_path):
    monkeypatch.setattr(lab, "CONTROL_DIR", tmp_path)
    monkeypatch.setattr(lab.shutil, "which", lambda name: None)  # no ssh: sockets removed only
    socks = []
    for name in ("lab-a/10.89.0.2-22-root", "lab-b/10.89.0.2-22-root"):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        socks.append(sock)
    try:
        assert lab.end_ssh_masters("lab-a") == [str(tmp_path / "lab-a/10.89.0.2-22-root")]
        assert not (tmp_path / "lab-a/10.89.0.2-22-root").exists()
        assert (tmp_path / "lab-b/10.89.0.2-22-root").exists()
        assert lab.end_ssh_masters(None) == [str(tmp_path / "lab-b/10.89.0.2-22-root")]
        assert lab.end_ssh_masters("missing-lab") == []
    finally:
        for sock in socks:
            sock.close()
