"""Behaviour of the seed design: one HAProxy in front of the web servers."""

import json

import pytest
from labhosts import groups, haproxy_stat, host, http_get, run_playbook, wait_for

LBS = groups()["loadbalancers"]
WEBS = groups()["webservers"]


@pytest.mark.parametrize("name", LBS)
def test_haproxy_running_and_enabled(name):
    svc = host(name).service("haproxy")
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize("name", WEBS)
@pytest.mark.parametrize("service", ["nginx", "webapp"])
def test_web_services_running_and_enabled(name, service):
    svc = host(name).service(service)
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize("name", LBS)
def test_every_backend_up_on_the_runtime_api(name):
    def all_up():
        rows = [r for r in haproxy_stat(host(name)) if r["pxname"] == "webservers" and r["svname"] != "BACKEND"]
        return {r["svname"]: r["status"] for r in rows} if all(r["status"] == "UP" for r in rows) else None

    states = wait_for(all_up, timeout=30)
    assert states == {web: "UP" for web in WEBS}


@pytest.mark.parametrize("name", LBS)
def test_runtime_api_socket_is_root_only(name):
    sock = host(name).file("/run/haproxy/admin.sock")
    assert sock.is_socket
    assert sock.user == "root"
    assert sock.mode == 0o600


@pytest.mark.parametrize("name", LBS)
def test_requests_alternate_round_robin(name):
    # The client is another host of the scenario: traffic crosses the network.
    client = host(WEBS[0])
    served = [http_get(client, f"https://{name}/")["headers"]["x-served-by"] for _request in range(2 * len(WEBS) * 2)]
    assert set(served) == set(WEBS)
    # Round robin: each window of len(WEBS) consecutive answers covers every web server once.
    # (The monitoring probes use HAProxy's own health URI: they take no turn.)
    for i in range(len(served) - len(WEBS) + 1):
        assert sorted(served[i : i + len(WEBS)]) == sorted(WEBS), served


@pytest.mark.parametrize("name", LBS)
def test_body_names_the_serving_host_and_client_address_is_forwarded(name):
    client = host(WEBS[0])
    resp = http_get(client, f"https://{name}/")
    assert resp["status"] == 200
    assert resp["body"].startswith(f"Hello from {resp['headers']['x-served-by']}")
    info = http_get(client, f"https://{name}/api/info")
    client_ip = client.interface("eth0").addresses[0]
    assert client_ip in info["body"]


@pytest.mark.parametrize("name", WEBS)
def test_nginx_reuses_its_connections_to_the_application(name):
    # gunicorn's gthread workers keep nginx's upstream connections open (sync workers close each
    # one after its response): after a burst of requests idle connections to it remain.
    h = host(name)
    for _request in range(4 * len(WEBS)):
        assert http_get(host(LBS[0]), f"https://{LBS[0]}/")["status"] == 200
    established = h.check_output("ss -Htn state established '( dport = :8000 )'")
    assert established.strip(), "no kept-alive connection from nginx to gunicorn"
    assert any("--worker-class gthread" in p.args for p in h.process.filter() if "gunicorn" in p.args)


@pytest.mark.parametrize("name", WEBS)
def test_nginx_app_env_set_in_group_vars_reaches_the_running_application(name):
    """The README's way (nginx_app_env in group_vars/webservers) adds to the database settings
    the stack computes; both are in the environment of the running application."""
    h = host(name)
    pid = h.check_output("systemctl show --property MainPID --value webapp")
    environ = h.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid).splitlines()
    assert "APP_GREETING=set-in-group-vars" in environ
    assert any(line.startswith("DB_WRITE_HOST=") for line in environ)


MIGRATIONS = "/tmp/webinfra-migrations"  # noqa: S108 - written by the hook on the test host (molecule.yml)


def test_the_migration_hook_ran_once_for_the_release_on_the_first_web_server():
    """nginx_app_migrate_command: once per release (converge, then idempotence and check mode did
    not run it again), on the run's first web server, as the application user in the release
    directory with the application's environment and the release's python first on PATH."""
    first = host(WEBS[0])
    release = first.file("/srv/webapp/current").linked_to
    lines = first.file(MIGRATIONS).content_string.splitlines()
    assert lines == [f"webapp {release} set-in-group-vars {release}/venv/bin/python"]
    assert first.file(release + "/.webinfra-migrated").exists
    for other in WEBS[1:]:
        assert not host(other).file(MIGRATIONS).exists


@pytest.mark.parametrize("name", WEBS)
def test_app_runs_unprivileged_from_an_atomic_release(name):
    h = host(name)
    assert h.user("webapp").shell == "/usr/sbin/nologin"
    gunicorn = [p for p in h.process.filter() if "gunicorn" in p.args]
    assert gunicorn
    assert {p.user for p in gunicorn} == {"webapp"}
    current = h.file("/srv/webapp/current")
    assert current.is_symlink
    assert current.linked_to.startswith("/srv/webapp/releases/")
    assert h.file(current.linked_to + "/.webinfra-release").exists
    env = h.file("/etc/webapp/environment")
    assert env.mode == 0o640 and env.user == "root" and env.group == "webapp"


@pytest.mark.parametrize(
    "name, path",
    [(lb, "/etc/haproxy/haproxy.cfg") for lb in LBS]
    + [(web, f) for web in WEBS for f in ("/etc/nginx/nginx.conf", "/etc/systemd/system/webapp.service")],
)
def test_managed_files_carry_the_ansible_managed_header(name, path):
    head = host(name).file(path).content_string.splitlines()[:3]
    assert any("Ansible managed" in line for line in head), head


@pytest.mark.platform_independent
@pytest.mark.parametrize(
    "extra, expected",
    [
        ("haproxy_balance=bogus", "haproxy_balance"),
        ("haproxy_backend_group=nosuchgroup", "'nosuchgroup' (haproxy_backend_group)"),
    ],
)
def test_bad_input_is_refused_before_any_change(extra, expected):
    before = host(LBS[0]).file("/etc/haproxy/haproxy.cfg").sha256sum
    result = run_playbook(
        "molecule/resources/apply_role.yml", "-e", "role=haproxy", "-e", f"target={LBS[0]}", "-e", extra
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output[-3000:]
    if extra.startswith("haproxy_balance"):
        for allowed in ("roundrobin", "leastconn", "source"):
            assert allowed in output
    assert host(LBS[0]).file("/etc/haproxy/haproxy.cfg").sha256sum == before


@pytest.mark.parametrize("name", LBS)
def test_static_files_are_served_by_nginx_from_the_release(name):
    resp = http_get(host(WEBS[0]), f"https://{name}/static/index.html")
    assert resp["status"] == 200
    assert "served by nginx from the current release" in resp["body"]
    assert "x-served-by" not in resp["headers"]  # the application did not answer
    assert "max-age=3600" in resp["headers"]["cache-control"]


@pytest.mark.platform_independent
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"mysql_replication_server_id": 7}, "mysql_replication: duplicate server_id"),
        ({"webinfra_private_address": "fd00::5"}, "IPv6 private addresses are not supported"),
        ({"webinfra_app_env": ["A=1"]}, "webinfra_app_env"),
        # Outside the lab, admin surfaces open to every address are refused.
        ({"webinfra_lab": False, "webinfra_admin_networks": ["0.0.0.0/0"]}, "webinfra_admin_networks holds 0.0.0.0/0"),
    ],
)
def test_site_refuses_bad_input_before_any_host_is_changed(tmp_path, extra, expected):
    """Every role's checks run in site.yml's first play: the same run also adds an admin network,
    which the firewall (the first play that changes hosts) would apply - it must not."""
    stack = sorted(set(LBS + WEBS))

    def firewall_files():
        cmd = "find /etc/nftables.conf /etc/nftables.d -type f -exec sha256sum {} + | sort"
        return {name: host(name).check_output(cmd) for name in stack}

    before = firewall_files()
    admin = (
        "{{ [hostvars['lb-01'] | webinfra.distributed.host_address ~ '/32', "
        "ansible_facts.default_ipv4.gateway ~ '/32', '192.0.2.0/24'] }}"
    )
    variables = tmp_path / "extra.json"
    variables.write_text(json.dumps({"webinfra_admin_networks": admin, **extra}))
    result = run_playbook("site.yml", "-e", f"@{variables}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in " ".join(output.split()), output[-3000:]
    assert firewall_files() == before
