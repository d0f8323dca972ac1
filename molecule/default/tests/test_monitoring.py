"""Monitoring: exporters on every tier, Prometheus with its alerts, stats page, logs."""

import base64
import json
import re
from urllib.parse import quote

import pytest
from labhosts import groups, host, hostvars, http_get, run_playbook, sql, wait_for

LBS = groups()["loadbalancers"]
WEBS = groups()["webservers"]
PRIMARY = groups()["db_primary"][0]
REPLICAS = groups()["db_replicas"]
MONITOR = groups()["monitoring"][0]
CLIENT = groups()["clients"][0]
STACK = sorted(set(LBS + WEBS + [PRIMARY, *REPLICAS, MONITOR]))
# The exporters' ports as the scenario moved them (molecule.yml; the roles' defaults otherwise).
NODE_PORT = int(hostvars(PRIMARY).get("exporters_node_port", 9100))
NGINX_PORT = int(hostvars(WEBS[0]).get("exporters_nginx_port", 9113))
MYSQLD_PORT = int(hostvars(PRIMARY).get("exporters_mysqld_port", 9104))
HAPROXY_PORT = int(hostvars(LBS[0]).get("haproxy_metrics_port", 8405))


def address(name):
    return host(name).interface("eth0").addresses[0]


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def monitor_get(port, path, headers=None):
    """GET on Prometheus (9090) or Alertmanager (9093): HTTPS (verified against the internal
    CA) with the web login unless `headers` are given."""
    if headers is None:
        headers = basic(
            hostvars(MONITOR).get("monitoring_web_user", "admin"), hostvars(MONITOR)["monitoring_web_password"]
        )
    return http_get(host(MONITOR), f"https://{address(MONITOR)}:{port}{path}", headers)


PLAIN = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)\n"
    "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    "except Exception as e:\n    print(type(e).__name__)\n"
)


def plain_http(client, url):
    """What a plain-HTTP GET of `url` gets: a status, or the error's class name."""
    return client.check_output("python3 -c %s %s", PLAIN, url)


def prometheus(path):
    resp = monitor_get(9090, path)
    assert resp["status"] == 200, resp
    return json.loads(resp["body"])["data"]


def firing():
    """{(alertname, instance-or-server): state} of the alerts Prometheus holds."""
    return {
        (a["labels"]["alertname"], a["labels"].get("server") or a["labels"].get("instance")): a["state"]
        for a in prometheus("/api/v1/alerts")["alerts"]
    }


def test_every_target_is_scraped_and_up():
    expected = {("node", h) for h in STACK}
    expected |= {("haproxy", h) for h in LBS} | {("nginx", h) for h in WEBS}
    expected |= {("mysqld", h) for h in [PRIMARY, *REPLICAS]} | {("ha_agent", h) for h in [PRIMARY, *REPLICAS]}
    expected |= {("prometheus", MONITOR), ("alertmanager", MONITOR)}
    expected |= {("https", f"https://{lb}:443/haproxy-health") for lb in LBS}

    def targets():
        active = prometheus("/api/v1/targets")["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in active}
        return seen if seen.keys() == expected and set(seen.values()) == {"up"} else None

    seen = wait_for(targets, timeout=60, interval=2)
    assert seen, prometheus("/api/v1/targets")["activeTargets"]


def test_probes_use_haproxy_health_uri_which_takes_no_backend_turn():
    resp = http_get(host(CLIENT), f"https://{LBS[0]}/haproxy-health")
    assert resp["status"] == 200
    assert "x-served-by" not in resp["headers"]  # answered by HAProxy, not a web server


def test_alert_rules_are_loaded():
    names = {r["name"] for g in prometheus("/api/v1/rules")["groups"] for r in g["rules"]}
    assert names >= {
        "BackendServerDown",
        "AllBackendServersDown",
        "HTTP5xxRateHigh",
        "ReplicationStopped",
        "ReplicationLagHigh",
        "DiskAlmostFull",
        "CertificateExpiringSoon",
        "HTTPSProbeFailed",
        "ExporterDown",
        "BackupTooOld",
        "BackupFailed",
        "BinlogArchiveStopped",
        "RestoreDrillFailed",
    }


def test_metrics_carry_the_stack_state():
    def value(query):
        result = prometheus(f"/api/v1/query?query={quote(query)}")["result"]
        return {r["metric"].get("instance"): float(r["value"][1]) for r in result}

    assert value("mysql_slave_status_slave_sql_running") == {r: 1.0 for r in REPLICAS}
    assert value("nginx_up") == {w: 1.0 for w in WEBS}
    assert set(value('haproxy_backend_active_servers{proxy="webservers"}').values()) == {float(len(WEBS))}
    # The backup host's metrics (node exporter's textfile collector): a backup, the archive following.
    backups = groups()["backups"]
    assert wait_for(lambda: value("webinfra_backup_last_run_success") == {b: 1.0 for b in backups}, 120, 2)
    assert value("webinfra_binlog_archive_connected") == {b: 1.0 for b in backups}
    assert not {key[0] for key in firing()} & {"BackupTooOld", "BackupFailed", "BinlogArchiveStopped"}
    # The site's certificate (internal CA, renewed by the pki role) is far from expiry.
    left = list(value("probe_ssl_earliest_cert_expiry - time()").values())
    assert left and all(seconds > 14 * 86400 for seconds in left)


def console_rows(body, section):
    """The cells of each row of one section's table of the overview page."""
    part = body.split(f'<h2 id="{section}">', 1)[1].split("</table>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", part, re.S)
    ][1:]


def test_the_overview_page_shows_every_tier_with_its_state():
    """Prometheus serves the stack's overview page (its console template): every balancer with
    its rates, every backend server UP on every balancer, which database is primary and that the
    replicas replicate, the backups and the (empty) alert table."""

    def page():
        resp = monitor_get(9090, "/consoles/webinfra.html")
        assert resp["status"] == 200, resp
        body = resp["body"]
        backends = {(row[0], row[1]): row[2] for row in console_rows(body, "backends")}
        return body if backends == {(lb, web): "UP" for lb in LBS for web in WEBS} else None

    body = wait_for(page, timeout=60, interval=2)
    assert body, console_rows(monitor_get(9090, "/consoles/webinfra.html")["body"], "backends")
    balancers = {row[0]: row for row in console_rows(body, "balancers")}
    assert set(balancers) == set(LBS)
    for row in balancers.values():
        assert row[1] == "up" and float(row[2]) >= 0 and float(row[3]) >= 0 and row[4] == str(len(WEBS)), row
    databases = {row[0]: row for row in console_rows(body, "databases")}
    assert set(databases) == {PRIMARY, *REPLICAS}
    assert databases[PRIMARY][1:3] == ["answers", "primary (writable)"], databases[PRIMARY]
    for replica in REPLICAS:
        assert databases[replica][1:4] == ["answers", "replica (read-only)", "running"], databases[replica]
        assert float(databases[replica][4]) >= 0
    assert f"HA leader (etcd lease): {PRIMARY}" in re.sub(r"<[^>]+>", "", body)
    assert console_rows(body, "backups")[0][2] in {"passed", "failed", "none yet"}
    assert console_rows(body, "alerts") == [["none"]] or all(len(row) == 3 for row in console_rows(body, "alerts"))


def test_replication_and_backend_alerts_fire_and_clear():
    """Stopping replication on a replica and the app on a web server fire their alerts (and
    reach Alertmanager) within the scenario's short `for`; both clear after the repair."""
    replica, web = REPLICAS[0], WEBS[0]
    wanted = {("ReplicationStopped", replica), ("BackendServerDown", web)}
    try:
        sql(replica, "STOP SLAVE")
        host(web).check_output("systemctl stop webapp")
        states = wait_for(lambda: wanted <= {k for k, v in firing().items() if v == "firing"}, timeout=90, interval=2)
        assert states, firing()
        resp = monitor_get(9093, "/api/v2/alerts")
        received = {a["labels"]["alertname"] for a in json.loads(resp["body"])}
        assert {"ReplicationStopped", "BackendServerDown"} <= received
    finally:
        sql(replica, "START SLAVE")
        host(web).check_output("systemctl start webapp")
    cleared = wait_for(lambda: not wanted & set(firing()), timeout=90, interval=2)
    assert cleared, firing()


@pytest.mark.parametrize("name", STACK)
def test_exporters_listen_on_the_private_address_only(name):
    listening = host(name).check_output("ss -Htln")
    ports = {NODE_PORT}
    if name in WEBS:
        ports.add(NGINX_PORT)
    if name in [PRIMARY, *REPLICAS]:
        ports.add(MYSQLD_PORT)
    for port in ports:
        assert f"{address(name)}:{port} " in listening, listening
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening, listening


def test_exporters_answer_over_tls_only_with_a_certificate_for_their_address():
    """webinfra_exporters_tls (on in this scenario): every exporter and HAProxy's metrics endpoint
    answers HTTPS verified against the internal CA (and their address, as Prometheus verifies it);
    plain HTTP gets no metrics."""
    monitor = host(MONITOR)
    endpoints = [(name, NODE_PORT) for name in STACK] + [(name, NGINX_PORT) for name in WEBS]
    endpoints += [(name, MYSQLD_PORT) for name in [PRIMARY, *REPLICAS]] + [(name, HAPROXY_PORT) for name in LBS]
    for name, port in endpoints:
        url = f"{address(name)}:{port}/metrics"
        resp = http_get(monitor, f"https://{url}")
        assert resp["status"] == 200 and "# TYPE" in resp["body"], (name, port, resp["status"])
        plain = plain_http(monitor, f"http://{url}")
        assert plain != "200", (name, port, plain)
    key = host(WEBS[0]).file("/etc/prometheus/exporters-tls/key.pem")
    assert (key.user, key.group, key.mode) == ("root", "prometheus", 0o640)
    config = monitor.file("/etc/prometheus/prometheus.yml").content_string
    assert config.count("exporters-ca.pem") >= 4 and "scheme: https" in config


def test_mysqld_exporter_account_has_least_privilege():
    grants = sql(PRIMARY, "SHOW GRANTS FOR 'exporter'@'localhost'")
    assert "PROCESS" in grants and "SLAVE MONITOR" in grants
    assert "ALL PRIVILEGES" not in grants and "INSERT" not in grants and "SUPER" not in grants
    cnf = host(PRIMARY).file("/etc/prometheus/mysqld-exporter.cnf")
    assert (cnf.user, cnf.group, cnf.mode) == ("root", "prometheus", 0o640)


@pytest.mark.parametrize(("port", "path"), [(9090, "/api/v1/status/buildinfo"), (9093, "/api/v2/status")])
def test_prometheus_and_alertmanager_answer_over_tls_to_the_login_only(port, path):
    """Anyone who reached them could read every metric or silence the next outage's alerts."""
    user = hostvars(MONITOR).get("monitoring_web_user", "admin")
    assert monitor_get(port, path)["status"] == 200
    assert monitor_get(port, path, {})["status"] == 401
    assert monitor_get(port, path, basic(user, "wrong-password"))["status"] == 401
    # Plain HTTP gets no answer from the application (Go's TLS server: 400, nothing else).
    plain = plain_http(host(MONITOR), f"http://{address(MONITOR)}:{port}{path}")
    assert plain == "400", plain
    config = host(MONITOR).file("/etc/prometheus/web/web-config.yml")
    assert (config.user, config.group, config.mode) == ("root", "prometheus", 0o640)
    assert hostvars(MONITOR)["monitoring_web_password"] not in config.content_string
    assert f"{user}: $2b$" in config.content_string
    key = host(MONITOR).file("/etc/prometheus/web/key.pem")
    assert (key.group, key.mode) == ("prometheus", 0o640)


def test_stats_page_needs_the_password_an_admin_network_and_tls():
    lb = LBS[0]
    url = f"https://{address(lb)}:8404/stats"
    admin = host(lb)  # the scenario's admin network is lb-01's address
    assert http_get(admin, url)["status"] == 401
    assert http_get(admin, url, basic("admin", "wrong-password"))["status"] == 401
    resp = http_get(admin, url, basic("admin", hostvars(lb)["haproxy_stats_password"]))
    assert resp["status"] == 200 and "Statistics Report" in resp["body"]
    # No plain HTTP: the password would cross the network readable.
    plain = plain_http(admin, f"http://{address(lb)}:8404/stats")
    assert not plain.isdigit(), plain
    # Only the hash is on the host, and the configuration is not world-readable.
    cfg = host(lb).file("/etc/haproxy/haproxy.cfg")
    assert hostvars(lb)["haproxy_stats_password"] not in cfg.content_string
    assert cfg.mode == 0o640
    # From outside the admin networks the port is dropped.
    probe = host(CLIENT).run("timeout 3 bash -c 'echo > /dev/tcp/%s/8404'", lb)
    assert probe.rc != 0


def test_requests_are_logged_to_journald_with_timings():
    lb, web = LBS[0], WEBS[0]
    for _request in range(2 * len(WEBS)):
        http_get(host(CLIENT), f"https://{lb}/?logged=1")
    # HAProxy: httplog with the timers Tq/Tw/Tc/Tr/Ta, in the journal of its unit.
    haproxy_log = host(lb).check_output("journalctl -u haproxy --no-pager -n 50 -o cat")
    assert re.search(r"webservers/web-\d+ \d+/\d+/\d+/\d+/\d+ 200 ", haproxy_log), haproxy_log[-2000:]
    # nginx: one JSON object per request, under the identifier "nginx".
    lines = [
        ln
        for ln in host(web).check_output("journalctl -t nginx --no-pager -n 50 -o cat").splitlines()
        if "logged=1" in ln
    ]
    entry = json.loads(lines[-1])
    assert entry["status"] == 200 and "request_time" in entry and entry["upstream_response_time"]
    # gunicorn writes no second access line per request (nginx_app_app_access_log: false).
    app_log = host(web).check_output("journalctl -u webapp --no-pager -n 200 -o cat")
    assert "logged=1" not in app_log, app_log[-2000:]


@pytest.mark.platform_independent
@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"webinfra_monitoring_group": "nobody"}, "'nobody' has no host"),
        ({"monitoring_alert_replication_lag_seconds": "soon"}, "monitoring_alert_replication_lag_seconds"),
        ({"monitoring_alert_disk_percent": 150}, "monitoring_alert_disk_percent in (0, 100) (is 150)"),
        (
            {"monitoring_alert_backend_down_for": "1 minute"},
            "monitoring_alert_backend_down_for must be Prometheus",
        ),
    ],
    ids=["empty-group", "wrong-type", "out-of-range", "bad-duration"],
)
def test_bad_monitoring_input_is_refused_before_any_change(tmp_path, extra, expected):
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    # The load balancers' own preflight needs the certificates the pki role sets (not run here).
    result = run_playbook(
        "site.yml", "--limit", MONITOR, "--tags", "preflight", "--skip-tags", "haproxy", "-e", f"@{extra_file}"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output[-3000:]
    assert "changed=0" in output[output.rindex("PLAY RECAP") :]


def test_the_health_playbook_checks_prometheus_and_alertmanager_over_https(tmp_path):
    # They answer over HTTPS only, behind the web login: a plain-HTTP check failed every stack
    # with monitoring. The login never shows in the output.
    report_file = tmp_path / "health.json"
    proc = run_playbook("playbooks/health.yml", "-e", f"health_report_file={report_file}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads(report_file.read_text())
    rows = {(row[0], row[1]): row[2] for row in report["checks"]}
    assert rows[(MONITOR, "prometheus")] == "ok" and rows[(MONITOR, "alertmanager")] == "ok", report["checks"]
    assert report["healthy"], report
    assert hostvars(MONITOR)["monitoring_web_password"] not in proc.stdout + proc.stderr
