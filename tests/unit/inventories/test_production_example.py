"""The production example as an operator meets it: its group_vars layout (a vault file created
where the README says, group_vars/all/vault.yml, adds its secrets and keeps every setting:
Ansible reads group_vars/all/ or group_vars/all.yml, never both); and the first play's model step
on local stand-ins for its hosts (ansible-playbook, real templating of the vault references):
without a vault one refusal names every secret, the filled template passes, and the small
example's hosts work with the same settings."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "inventories" / "production.example"
INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def host_vars(inventory, host):
    proc = subprocess.run(
        [str(INVENTORY), "-i", str(inventory), "--host", host], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def test_a_vault_beside_the_settings_keeps_every_setting(tmp_path):
    inventory = tmp_path / "production"
    shutil.copytree(EXAMPLE, inventory)
    before = host_vars(inventory, "db-01.example.com")
    assert before["webinfra_vip"] and before["webinfra_admin_networks"] and before["webinfra_server_names"]
    (inventory / "group_vars" / "all" / "vault.yml").write_text(
        "---\nvault_mysql_replication_password: from-the-vault\n"
    )
    after = host_vars(inventory, "db-01.example.com")
    assert after.pop("vault_mysql_replication_password") == "from-the-vault"
    # The example reads the secret from the vault's variable (a template, not a password).
    assert after["mysql_replication_password"] == "{{ vault_mysql_replication_password }}"  # noqa: S105
    assert after == before


# The first play's model step, on local stand-ins for the example's hosts (no host is changed:
# the stack role only reads), with the collection from this checkout.
MODEL_PLAY = """\
- name: The stack model of the production example, on local stand-ins
  hosts: all
  gather_facts: true
  tasks:
    - name: Compute the stack model
      ansible.builtin.include_role:
        name: webinfra.distributed.stack
"""
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
STRONG = "x7Kq2mVr9sTz4LpW"


def run_model(inventory, tmp_path):
    playbook = tmp_path / "model.yml"
    playbook.write_text(MODEL_PLAY)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(
        [
            str(PLAYBOOK),
            "-i",
            str(inventory),
            str(playbook),
            "-e",
            "ansible_connection=local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            "ansible_become=false",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_example_without_a_vault_is_refused_once_naming_every_secret(tmp_path):
    inventory = tmp_path / "production"
    shutil.copytree(EXAMPLE, inventory)
    rc, out = run_model(inventory, tmp_path)
    assert rc != 0
    # One refusal (the first host's) lists them all; the others point at it.
    assert "9 input(s) to set" in out, out
    assert out.count("input(s) to set") == out.count("9 input(s) to set")
    assert "lb-01.example.com's refusal lists every input to set" in out
    vault = (EXAMPLE / "group_vars" / "all" / "vault.yml.example").read_text()
    names = [line.split(":")[0] for line in vault.splitlines() if line.startswith("vault_")]
    assert len(names) == 8
    for name in names:
        assert f"'{name}' is undefined" in out, name
    assert "haproxy_tls_certificate cannot be read" in out and "site.crt" in out


def test_the_filled_vault_template_passes_the_model(tmp_path):
    inventory = tmp_path / "production"
    shutil.copytree(EXAMPLE, inventory)
    template = inventory / "group_vars" / "all" / "vault.yml.example"
    vault = template.read_text().replace('""', f'"{STRONG}"')
    (inventory / "group_vars" / "all" / "vault.yml").write_text(vault)
    (inventory / "group_vars" / "all" / "site.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    rc, out = run_model(inventory, tmp_path)
    assert rc == 0, out
    assert "not ready" not in out


def test_a_weak_or_empty_vault_entry_is_named(tmp_path):
    inventory = tmp_path / "production"
    shutil.copytree(EXAMPLE, inventory)
    template = inventory / "group_vars" / "all" / "vault.yml.example"
    vault = template.read_text().replace('""', f'"{STRONG}"')
    vault = vault.replace(f'vault_haproxy_stats_password: "{STRONG}"', 'vault_haproxy_stats_password: "short"')
    vault = vault.replace(f'vault_backup_binlog_password: "{STRONG}"', 'vault_backup_binlog_password: ""')
    (inventory / "group_vars" / "all" / "vault.yml").write_text(vault)
    (inventory / "group_vars" / "all" / "site.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    rc, out = run_model(inventory, tmp_path)
    assert rc != 0
    balancers = "lb-01.example.com, lb-02.example.com"
    assert f"haproxy_stats_password is a lab default or shorter than 12 characters (on {balancers})" in out
    assert (
        "backup_binlog_password is not set (needed on backup-01.example.com, db-01.example.com, db-02.example.com)"
        in out
    )
    assert "2 input(s) to set" in out


def test_the_small_example_uses_the_production_settings(tmp_path):
    inventory = tmp_path / "production"
    shutil.copytree(EXAMPLE, inventory)
    shutil.copy(EXAMPLE.parent / "small.example" / "hosts.yml", inventory / "hosts.yml")
    vault = (inventory / "group_vars" / "all" / "vault.yml.example").read_text().replace('""', f'"{STRONG}"')
    (inventory / "group_vars" / "all" / "vault.yml").write_text(vault)
    (inventory / "group_vars" / "all" / "site.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    rc, out = run_model(inventory, tmp_path)
    assert rc == 0, out
    assert out.count("ok: [") >= 10  # facts and model of the five hosts
