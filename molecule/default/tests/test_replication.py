"""Primary-replica replication in the seed design: writes through the balancer reach the replica."""

import json
import time

import pytest
from labhosts import (
    ca_certificate,
    groups,
    haproxy_stat,
    host,
    hostvars,
    http_get,
    http_json,
    run_module,
    run_playbook,
    sql,
    wait_for,
)

LBS = groups()["loadbalancers"]
WEBS = groups()["webservers"]
PRIMARY = groups()["db_primary"][0]
REPLICAS = groups()["db_replicas"]
# The database port as the scenario moved it (molecule.yml).
DB = int(hostvars(PRIMARY).get("mysql_replication_port", 3306))


@pytest.mark.parametrize("name", REPLICAS)
def test_replication_info_reports_running_threads_and_low_lag(name):
    info = run_module(name, "webinfra.distributed.replication_info")
    assert info["is_replica"] and not info["is_primary"], info
    replica = info["replica"]
    assert replica["io_running"] and replica["sql_running"], replica
    assert replica["seconds_behind"] is not None and replica["seconds_behind"] <= 1
    assert replica["using_gtid"] == "slave_pos"
    assert info["read_only"] and info["binlog_format"] == "ROW" and info["gtid"]["strict_mode"]


def test_primary_reports_its_connected_replicas():
    info = run_module(PRIMARY, "webinfra.distributed.replication_info")
    assert info["is_primary"] and not info["read_only"] and info["log_bin"]
    # The backup host's binary-log archive reads the binary log too, with its own account.
    user = hostvars(PRIMARY).get("mysql_replication_user", "repl")
    assert len([r for r in info["replicas"] if r["user"] == user]) == len(REPLICAS), info["replicas"]
    archive = hostvars(PRIMARY).get("backup_binlog_user", "webinfra_binlog")
    assert {r["user"] for r in info["replicas"]} <= {user, archive}


def semisync(name, variable):
    return sql(name, f"SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_{variable}'").split("\t")[1]


def test_commits_are_acknowledged_by_a_replica_and_fall_back_without_one():
    """Semi-synchronous (AFTER_SYNC): a commit on the primary waits for a replica's
    acknowledgement; with no replica receiving it falls back to asynchronous after the timeout
    and resumes once a replica is back."""
    assert int(semisync(PRIMARY, "master_clients")) == len(REPLICAS)
    assert sql(PRIMARY, "SELECT @@rpl_semi_sync_master_wait_point") == "AFTER_SYNC"
    for replica in REPLICAS:
        assert semisync(replica, "slave_status") == "ON"
    sql(PRIMARY, "CREATE TABLE IF NOT EXISTS webapp.semisync_probe (id INT AUTO_INCREMENT PRIMARY KEY)")

    # After a fallback (an earlier test stopped replication) the primary turns semi-synchronous
    # again on the first acknowledgement of a new transaction.
    def semi_synchronous():
        sql(PRIMARY, "INSERT INTO webapp.semisync_probe VALUES ()")
        return semisync(PRIMARY, "master_status") == "ON"

    try:
        assert wait_for(semi_synchronous, timeout=30)
        acknowledged = int(semisync(PRIMARY, "master_yes_tx"))
        sql(PRIMARY, "INSERT INTO webapp.semisync_probe VALUES ()")
        assert int(semisync(PRIMARY, "master_yes_tx")) == acknowledged + 1
        # No replica receiving: the commit still succeeds, unacknowledged, after the timeout.
        for replica in REPLICAS:
            sql(replica, "STOP SLAVE IO_THREAD")
        unacknowledged = int(semisync(PRIMARY, "master_no_tx"))
        sql(PRIMARY, "INSERT INTO webapp.semisync_probe VALUES ()")
        assert int(semisync(PRIMARY, "master_no_tx")) == unacknowledged + 1
        # Asynchronous now: the status says so, or no semi-sync replica is connected.
        assert semisync(PRIMARY, "master_status") == "OFF" or int(semisync(PRIMARY, "master_clients")) == 0
    finally:
        for replica in REPLICAS:
            sql(replica, "START SLAVE IO_THREAD")
    assert wait_for(semi_synchronous, timeout=30)
    sql(PRIMARY, "DROP TABLE webapp.semisync_probe")


def test_server_ids_are_distinct():
    ids = {name: sql(name, "SELECT @@server_id").strip() for name in [PRIMARY, *REPLICAS]}
    assert len(set(ids.values())) == len(ids), ids


def test_row_written_through_the_balancer_is_read_through_another_web_server():
    client = host(WEBS[0])
    status, written = http_json(client, f"https://{LBS[0]}/api/notes", {"body": f"written at {time.time()}"})
    assert status == 201, written
    assert written["db_host"] == PRIMARY
    other = next(w for w in WEBS if w != written["written_by"])
    started = time.time()

    # Straight to the other web server: only the load balancers may reach it (firewall).
    def read_back():
        resp = http_get(host(LBS[0]), f"https://{other}/api/notes/{written['id']}")
        return resp if resp["status"] == 200 else None

    resp = wait_for(read_back, timeout=5, interval=0.1)
    elapsed = time.time() - started
    assert resp, f"note {written['id']} not readable through {other} within 5 s"
    print(
        f"row {written['id']} written on {PRIMARY} via {written['written_by']}, read via {other} after {elapsed:.2f} s"
    )
    if other in REPLICAS:
        assert resp["headers"]["x-db-host"] == other  # served by its local replica


# Sends COUNT POSTs at once (one connection each, so the balancer spreads them) and prints
# {body: HTTP status or error}.
PARALLEL_POSTS = """
import json, ssl, sys, threading, urllib.error, urllib.request
url, cadata, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
context = ssl.create_default_context(cadata=cadata)
results = {}
def post(i):
    body = f"{prefix}-{i}"
    req = urllib.request.Request(url, data=json.dumps({"body": body}).encode(),
                                 headers={"Content-Type": "application/json", "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=120, context=context) as r:
            results[body] = r.status
    except urllib.error.HTTPError as e:
        results[body] = e.code
    except OSError as e:
        results[body] = repr(e)
threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results))
"""


def web_server_status(lb, name):
    return next(r["status"] for r in haproxy_stat(host(lb)) if r["pxname"] == "webservers" and r["svname"] == name)


def test_a_post_that_reached_a_stalled_server_is_not_resent_and_no_note_is_stored_twice():
    """HAProxy re-sends only idempotent methods once a server has the request: POSTs stuck on a
    stalled application end with an error instead of being re-sent to the other web server, and
    when the stalled application resumes and commits them, no note exists twice."""
    client = host(groups()["clients"][0])
    stalled = WEBS[0]
    prefix = f"no-resend-{int(time.time())}"
    count = 6
    host(stalled).check_output("systemctl kill --signal=SIGSTOP webapp")
    try:
        out = client.check_output(
            "python3 -c %s %s %s %s %s",
            PARALLEL_POSTS,
            f"https://{LBS[0]}/api/notes",
            ca_certificate(),
            prefix,
            str(count),
        )
    finally:
        host(stalled).check_output("systemctl kill --signal=SIGCONT webapp")
    results = json.loads(out)
    assert wait_for(lambda: web_server_status(LBS[0], stalled) == "UP", timeout=30), "stalled server not UP again"
    acked = sorted(body for body, status in results.items() if status == 201)
    refused = {body: status for body, status in results.items() if status != 201}
    # Round robin sent about half of them to the stalled server: those were answered by a
    # timeout (504 from nginx or HAProxy), not re-sent elsewhere.
    assert refused, f"every POST succeeded: the ones sent to the stalled {stalled} were re-sent ({results})"
    assert set(refused.values()) <= {502, 504}, results
    assert acked, results

    def stored():
        query = f"SELECT body, COUNT(*) FROM webapp.notes WHERE body LIKE '{prefix}-%' GROUP BY body"  # noqa: S608
        rows = sql(PRIMARY, query)
        return dict((line.split("\t")[0], int(line.split("\t")[1])) for line in rows.splitlines() if line)

    # The resumed application commits what it had received; give it a moment.
    time.sleep(3)
    counts = stored()
    print(f"POSTs with {stalled} stalled: {results}; stored: {counts}")
    assert all(n == 1 for n in counts.values()), f"notes stored twice: {counts}"
    assert all(counts.get(body) == 1 for body in acked), f"acknowledged notes missing: {acked} vs {counts}"


def test_app_accounts_are_least_privilege():
    grants = sql(PRIMARY, "SHOW GRANTS FOR 'app_reader'@'%'")
    assert "GRANT SELECT ON `webapp`.*" in grants
    writer = sql(PRIMARY, "SHOW GRANTS FOR 'app_writer'@'%'")
    assert "SELECT, INSERT, UPDATE, DELETE ON `webapp`.*" in writer
    assert sql(PRIMARY, "SELECT COUNT(*) FROM mysql.user WHERE user = ''").strip() == "0"


@pytest.mark.parametrize("name", REPLICAS)
def test_replica_refuses_application_writes(name):
    out = host(name).run(
        "mariadb --ssl --ssl-ca=/etc/mysql/tls/ca.pem -h %s -P %s -u app_writer -p%s webapp -e %s",
        host(name).interface("eth0").addresses[0],
        str(DB),
        hostvars(name)["mysql_replication_app_writer_password"],
        "INSERT INTO notes (body, written_by) VALUES ('x', 'test')",
    )
    assert out.rc != 0 and "read-only" in out.stderr.lower()


def test_application_accounts_require_tls_over_the_network():
    """REQUIRE SSL: the server refuses any application connection over the network that is not
    encrypted. Only the reader for localhost (the unix socket of a web server on a replica's
    host) has none."""
    accounts = sql(PRIMARY, "SELECT user, host, ssl_type FROM mysql.user WHERE user LIKE 'app\\_%'")
    rows = {tuple(line.split("\t")) for line in accounts.splitlines() if line}
    assert rows == {("app_writer", "%", "ANY"), ("app_reader", "%", "ANY"), ("app_reader", "localhost", "")}, rows
    plain = (
        "mariadb --skip-ssl -h %s -P %s -u app_writer -p%s webapp -NBe 'SELECT 1'",
        host(PRIMARY).interface("eth0").addresses[0],
        str(DB),
        hostvars(PRIMARY)["mysql_replication_app_writer_password"],
    )
    refused = host(REPLICAS[0]).run(*plain)
    assert refused.rc != 0 and "access denied" in refused.stderr.lower(), refused.stderr
    encrypted = host(REPLICAS[0]).run(
        plain[0].replace("--skip-ssl", "--ssl --ssl-ca=/etc/mysql/tls/ca.pem"), *plain[1:]
    )
    assert encrypted.rc == 0 and encrypted.stdout.strip() == "1", encrypted.stderr


@pytest.mark.parametrize("name", WEBS)
def test_the_application_connects_to_its_databases_over_tls(name):
    """The application's own health probes report each connection's cipher: TLS to the writer
    endpoint (passed through to the primary) and to a remote replica; the unix socket to a
    replica on the same host stays local."""
    read = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/healthz', timeout=5).read().decode())"
    health = json.loads(host(name).check_output("python3 -c %s", read))
    assert health["db"]["write"]["ok"] and health["db"]["write"]["tls"], health
    assert health["db"]["read"]["ok"], health
    if name in REPLICAS:
        assert health["db"]["read"]["tls"] is None, health
    else:
        assert health["db"]["read"]["tls"], health
    env = host(name).file("/etc/webapp/environment").content_string
    assert 'DB_SSL_CA="/etc/webapp/db-ca.pem"' in env
    assert host(name).file("/etc/webapp/db-ca.pem").content_string.strip() == ca_certificate().strip()


# The second converge is Molecule's idempotence step (changed=0 on every host). The side effect
# before it gave the first replica a row of its own (not binlogged): a re-seed would have erased
# it. On the other releases the side effect does not run.
@pytest.mark.platform_independent
def test_the_second_converge_never_reseeds_a_replica():
    replica = REPLICAS[0]
    try:
        assert sql(replica, "SELECT body FROM webapp.notes WHERE id = 4000000000").strip() == "marker"
        info = run_module(replica, "webinfra.distributed.replication_info")
        assert info["replica"]["running"], info
    finally:
        sql(replica, "SET SESSION sql_log_bin=0; DELETE FROM webapp.notes WHERE id = 4000000000")
    count = sql(PRIMARY, "SELECT COUNT(*) FROM webapp.notes").strip()
    assert wait_for(lambda: sql(replica, "SELECT COUNT(*) FROM webapp.notes").strip() == count, timeout=5)


def test_wrong_password_fails_with_the_replicas_error_and_the_right_one_repairs():
    replica = REPLICAS[0]
    # The HA agent would re-point the replica itself: it is stopped for this test of the module.
    host(replica).check_output("systemctl stop webinfra-ha-agent")
    try:
        wrong_password_then_repair(replica)
    finally:
        host(replica).check_output("systemctl start webinfra-ha-agent")


def wrong_password_then_repair(replica):
    # Forget the source (the GTID position is kept), then configure it with a wrong password.
    absent = run_playbook("molecule/resources/replicate.yml", "-e", f"target={replica}", "-e", "repl_state=absent")
    assert absent.returncode == 0, absent.stdout[-2000:]
    wrong = run_playbook("molecule/resources/replicate.yml", "-e", f"target={replica}", "-e", "repl_password=wrong")
    output = wrong.stdout + wrong.stderr
    assert wrong.returncode != 0
    assert "Access denied" in output and "Last_IO_Error" in output, output[-3000:]
    assert "wrong" not in [line.strip() for line in output.splitlines()]
    fixed = run_playbook("molecule/resources/replicate.yml", "-e", f"target={replica}")
    assert fixed.returncode == 0, (fixed.stdout + fixed.stderr)[-3000:]
    info = run_module(replica, "webinfra.distributed.replication_info")
    assert info["replica"]["running"]
    # Writes made meanwhile arrive.
    status, written = http_json(host(WEBS[0]), f"https://{LBS[0]}/api/notes", {"body": "after repair"})
    assert status == 201
    query = f"SELECT COUNT(*) FROM webapp.notes WHERE id = {int(written['id'])}"  # noqa: S608
    assert wait_for(lambda: sql(replica, query).strip() == "1", timeout=5)


@pytest.mark.platform_independent
@pytest.mark.parametrize(
    "extra_inventory, expected",
    [
        # A second primary (and a host in both groups).
        ({"db_primary": {"hosts": {REPLICAS[0]: None}}}, f"it holds 2: {PRIMARY}, {REPLICAS[0]}"),
        # The same explicit server_id on two hosts.
        (
            {"all": {"vars": {"mysql_replication_server_id": 7}}},
            f"duplicate server_id on {PRIMARY} and {REPLICAS[0]} (7)",
        ),
    ],
)
def test_bad_topology_is_refused_before_any_change(tmp_path, extra_inventory, expected):
    extra = tmp_path / "extra.yml"
    extra.write_text(
        json.dumps({"all": {"children": extra_inventory}} if "all" not in extra_inventory else extra_inventory)
    )
    before = {
        name: host(name).file("/etc/mysql/mariadb.conf.d/60-webinfra.cnf").sha256sum for name in [PRIMARY, *REPLICAS]
    }
    result = run_playbook(
        "molecule/resources/apply_role.yml",
        "-i",
        str(extra),
        "-e",
        "role=mysql_replication",
        "-e",
        "target=db_primary:db_replicas",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in " ".join(output.split()), output[-3000:]
    after = {
        name: host(name).file("/etc/mysql/mariadb.conf.d/60-webinfra.cnf").sha256sum for name in [PRIMARY, *REPLICAS]
    }
    assert before == after
