"""The production example's group_vars layout: a vault file created where docs/SECURITY.md says
(group_vars/all/vault.yml) adds its secrets and keeps every setting of the example (Ansible reads
group_vars/all/ or group_vars/all.yml, never both)."""

import json
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
    (inventory / "group_vars" / "all" / "vault.yml").write_text("---\nmysql_replication_password: from-the-vault\n")
    after = host_vars(inventory, "db-01.example.com")
    assert after.pop("mysql_replication_password") == "from-the-vault"
    assert after == before
