"""The host agents' artifact: what it holds, that it is reproducible, and that it runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from ansible_collections.webinfra.distributed.plugins.plugin_utils import agents
from webinfra_agents import ENTRY_POINTS

ROOT = Path(__file__).resolve().parents[4]
UTILS = "ansible_collections/webinfra/distributed/plugins/module_utils"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return agents.build(tmp_path_factory.mktemp("agents"))


def test_the_artifact_holds_the_package_and_exactly_the_module_utils_the_agents_import(artifact):
    names = set(zipfile.ZipFile(artifact).namelist())
    assert {"__main__.py", "webinfra_agents/ha/agent.py", "webinfra_agents/backup/agent.py"} <= names
    assert "webinfra_agents/acme/agent.py" in names and "webinfra_agents/_build.py" in names
    utils = {n.rsplit("/", 1)[1] for n in names if n.startswith(UTILS + "/") and not n.endswith("__init__.py")}
    # Derived from the imports (promotion imports replication; backup's archive imports gtid; the
    # HA agent's etcd client shares etcd_auth's key encoding).
    assert utils == {
        "etcd_auth.py",
        "gtid.py",
        "haproxy_runtime.py",
        "mysql_flavor.py",
        "option_file.py",
        "promotion.py",
        "replication.py",
    }
    assert not any("__pycache__" in n for n in names)


def test_the_build_is_reproducible_and_named_by_version_and_digest(artifact, tmp_path):
    again = agents.build(tmp_path)
    assert again.name == artifact.name
    assert again.read_bytes() == artifact.read_bytes()
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert artifact.name.startswith(f"webinfra-agents-{version}+") and artifact.suffix == ".pyz"


def test_a_second_build_reuses_the_file(artifact):
    before = artifact.stat().st_mtime_ns
    assert agents.build(artifact.parent) == artifact
    assert artifact.stat().st_mtime_ns == before


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_runs_from_the_artifact_alone(artifact, name, tmp_path):
    # -I: no PYTHONPATH, no user site, no current directory: only the zip and the standard library.
    out = subprocess.run(
        [sys.executable, "-I", str(artifact), name, "--version"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{name} {artifact.stem.removeprefix('webinfra-agents-')}"


def test_the_agents_import_from_the_artifact(artifact, tmp_path):
    code = "import webinfra_agents.ha.agent, webinfra_agents.backup.agent, webinfra_agents.acme.agent"
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(artifact)!r}); {code}"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr


def test_an_unknown_command_is_refused_with_the_list(artifact):
    out = subprocess.run([sys.executable, "-I", str(artifact), "nope"], check=False, capture_output=True, text=True)
    assert out.returncode == 2
    assert all(name in out.stderr for name in ENTRY_POINTS)


def test_the_common_role_installs_a_command_per_entry_point():
    role_vars = yaml.safe_load((ROOT / "roles" / "common" / "vars" / "main.yml").read_text())
    assert role_vars["__common_agents_entry_points"] == list(ENTRY_POINTS)


def _fake_collection(tmp_path, agent_source):
    root = tmp_path / "collection"
    shutil.copytree(ROOT / "agents", root / "agents")
    (root / "plugins" / "module_utils").mkdir(parents=True)
    (root / "galaxy.yml").write_text("version: 1.2.3\n")
    (root / "agents" / "webinfra_agents" / "extra.py").write_text(agent_source)
    for name in ("etcd_auth", "gtid", "haproxy_runtime", "mysql_flavor", "option_file", "promotion", "replication"):
        shutil.copy(ROOT / "plugins" / "module_utils" / f"{name}.py", root / "plugins" / "module_utils")
    return root


def test_an_agent_importing_ansible_is_refused(tmp_path):
    root = _fake_collection(tmp_path, "from ansible.module_utils.basic import AnsibleModule\n")
    with pytest.raises(agents.AgentsError, match="extra.py imports ansible.module_utils.basic"):
        agents.build(tmp_path / "out", root=root)


def test_an_unknown_module_utility_is_refused(tmp_path):
    root = _fake_collection(tmp_path, f"from {agents.MODULE_UTILS} import nothing_here\n")
    with pytest.raises(agents.AgentsError, match="no such module utility"):
        agents.build(tmp_path / "out", root=root)


def test_the_version_of_an_installed_collection_comes_from_its_manifest(tmp_path):
    (tmp_path / "MANIFEST.json").write_text('{"collection_info": {"version": "2.0.1"}}')
    assert agents.collection_version(tmp_path) == "2.0.1"
