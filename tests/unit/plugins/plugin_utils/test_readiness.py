"""plugin_utils.readiness: every missing input of an inventory in one refusal; the OS gate."""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.readiness import os_problem, problems, refusal

STRONG = "a-strong-secret-0123456789"
SECRETS = {
    "mysql_replication_password": STRONG,
    "mysql_replication_app_writer_password": STRONG,
    "mysql_replication_app_reader_password": STRONG,
    "exporters_mysqld_password": STRONG,
    "backup_binlog_password": STRONG,
    "haproxy_stats_password": STRONG,
    "monitoring_web_password": STRONG,
}
SITE = {
    "haproxy_tls_certificate": "-----BEGIN CERTIFICATE-----",
    "haproxy_tls_private_key": "-----BEGIN PRIVATE KEY-----",
}
TOPOLOGY = {
    "stack": ["lb-01", "lb-02", "web-01", "db-01", "db-02"],
    "loadbalancers": ["lb-01", "lb-02"],
    "db": ["db-01", "db-02"],
    "monitors": ["lb-01"],
    "backups": ["lb-01"],
    "monitoring": True,
}
INPUTS = {"webinfra_admin_networks": ["192.0.2.0/24"]}


def hostvars(**common):
    return {host: {"webinfra_server_names": ["www.example.com"], **common} for host in TOPOLOGY["stack"]}


class Undefined(dict):
    """hostvars whose secrets refer to a vault variable nobody defined (Ansible raises on access)."""

    def __getitem__(self, name):
        if name in SECRETS:
            raise RuntimeError(f"'vault_{name}' is undefined\nmore detail")
        return super().__getitem__(name)


def test_a_ready_inventory_has_no_problem():
    assert problems(INPUTS, {}, hostvars(**SECRETS, **SITE), TOPOLOGY, lab=False) == []


def test_every_missing_secret_and_setting_is_named_at_once_with_its_hosts():
    found = problems({}, {}, {host: {} for host in TOPOLOGY["stack"]}, TOPOLOGY, lab=False)
    text = "\n".join(found)
    for name in [*SECRETS, *SITE, "webinfra_admin_networks", "webinfra_server_names"]:
        assert name in text, name
    assert "mysql_replication_password is not set (needed on db-01, db-02)" in found
    assert "haproxy_stats_password is not set (needed on lb-01, lb-02)" in found
    assert "monitoring_web_password is not set (needed on lb-01)" in found
    # The archive account's password: the database hosts and the backup host.
    assert "backup_binlog_password is not set (needed on db-01, db-02, lb-01)" in found
    message = refusal(found)
    assert message.count("\n  - ") == len(found) == 11
    assert "vault.yml.example" in message


def test_weak_secrets_are_refused_outside_the_lab_only():
    weak = {**SECRETS, "haproxy_stats_password": "lab-stats-password", "monitoring_web_password": "short"}
    found = problems(INPUTS, {}, hostvars(**weak, **SITE), TOPOLOGY, lab=False)
    assert [line.split()[0] for line in found] == ["monitoring_web_password", "haproxy_stats_password"]
    assert "lab default or shorter than 12 characters" in found[0]
    # In the lab a weak secret is accepted, a missing one is not; no site certificate is needed.
    lab = problems({}, {}, hostvars(**{**weak, "mysql_replication_password": ""}), TOPOLOGY, lab=True)
    assert lab == ["mysql_replication_password is not set (needed on db-01, db-02)"]


def test_undefined_vault_variables_are_reported_not_raised():
    variables = {host: Undefined(SITE, webinfra_server_names=["x"], **SECRETS) for host in TOPOLOGY["stack"]}
    found = problems(INPUTS, {}, variables, TOPOLOGY, lab=False)
    assert len(found) == len(SECRETS)
    assert (
        "mysql_replication_password cannot be read on db-01, db-02: 'vault_mysql_replication_password' is undefined"
        in found
    )
    assert not any("more detail" in line for line in found)


def test_what_the_topology_does_not_use_is_not_asked_for():
    small = dict(TOPOLOGY, monitoring=False, backups=[], monitors=[])
    secrets = {
        k: v
        for k, v in SECRETS.items()
        if k not in ("exporters_mysqld_password", "monitoring_web_password", "backup_binlog_password")
    }
    assert problems(INPUTS, {}, hostvars(**secrets, **SITE), small, lab=False) == []
    # The archive off, or the statistics page off: their passwords are not needed.
    off = hostvars(**{**SECRETS, "backup_binlog_password": "", "haproxy_stats_password": "", **SITE})
    for host in off:
        off[host].update(backup_binlog_archive=False, haproxy_stats_enabled=False)
    assert problems(INPUTS, {}, off, TOPOLOGY, lab=False) == []
    # With ACME the balancers need neither a certificate nor server names here (the acme role checks its own).
    acme = problems(
        dict(INPUTS, webinfra_acme=True), {}, {h: dict(SECRETS) for h in TOPOLOGY["stack"]}, TOPOLOGY, lab=False
    )
    assert acme == []


def test_long_host_lists_are_shortened():
    many = dict(TOPOLOGY, db=[f"db-{i:02d}" for i in range(1, 8)], stack=[f"db-{i:02d}" for i in range(1, 8)])
    many.update(loadbalancers=[], monitors=[], backups=[], monitoring=False)
    found = problems(INPUTS, {}, {h: {} for h in many["stack"]}, many, lab=False)
    assert found[0] == "mysql_replication_password is not set (needed on db-01, db-02, db-03 and 4 more)"


def test_only_debian_12_and_13_pass_the_os_gate():
    assert os_problem("db-01", {"distribution": "Debian", "distribution_major_version": "12"}) == ""
    assert os_problem("db-01", {"distribution": "Debian", "distribution_major_version": "13"}) == ""
    ubuntu = os_problem(
        "lb-01", {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04"}
    )
    assert ubuntu.startswith("lb-01 runs Ubuntu 24.04; webinfra.distributed supports Debian 12 and 13 only")
    assert "Debian 11" in os_problem(
        "x", {"distribution": "Debian", "distribution_major_version": "11", "distribution_version": "11"}
    )
    # No facts (a host not gathered in a partial run): nothing to judge.
    assert os_problem("x", {}) == ""


def test_the_stack_action_refuses_an_unsupported_os_and_points_other_hosts_at_the_first():
    from ansible_collections.webinfra.distributed.plugins.action.stack_facts import refusal_message  # noqa: PLC0415

    groups = {
        "all": ["lb-01", "web-01"],
        "loadbalancers": ["lb-01"],
        "webservers": ["web-01"],
        "db_primary": ["web-01"],
        "monitoring": ["lb-01"],
    }
    hostvars = {"lb-01": {}, "web-01": {}}
    inputs = {"webinfra_lab": True}
    ubuntu = {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04"}
    task_vars = {"groups": groups, "hostvars": hostvars, "ansible_play_hosts_all": ["lb-01", "web-01"]}
    first = refusal_message("lb-01", inputs, dict(task_vars, ansible_facts=ubuntu), partial=False)
    assert "lb-01 runs Ubuntu 24.04; webinfra.distributed supports Debian 12 and 13 only" in first
    assert "mysql_replication_password is not set (needed on web-01)" in first
    other = refusal_message(
        "web-01",
        inputs,
        dict(task_vars, ansible_facts={"distribution": "Debian", "distribution_major_version": "13"}),
        partial=False,
    )
    assert other == "the inventory is not ready for a run: lb-01's refusal lists every input to set"
    # A partial model (failover, health) judges neither.
    assert refusal_message("lb-01", inputs, dict(task_vars, ansible_facts=ubuntu), partial=True) == ""
