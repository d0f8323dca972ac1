# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host agents' artifact: one executable zip (`webinfra-agents.pyz`) built on the controller.

It holds the `webinfra_agents` package (the collection's `agents/` directory), the collection's
module utilities those agents import (found by reading their imports, transitively: the list is
derived, never kept by hand) and a `_build` module with its version. The build is reproducible:
same sources, same bytes (fixed timestamps and order), so copying it to a host is idempotent.
Agents may import the standard library, PyMySQL (python3-pymysql on the hosts) and those module
utilities; an import of Ansible itself is refused, since the hosts have none.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

COLLECTION = Path(__file__).resolve().parents[2]
PACKAGE = "webinfra_agents"
MODULE_UTILS = "ansible_collections.webinfra.distributed.plugins.module_utils"
SHEBANG = b"#!/usr/bin/python3 -I\n"
# 1980-01-01, the earliest time a zip entry can carry.
EPOCH = (1980, 1, 1, 0, 0, 0)


class AgentsError(Exception):
    """The agents' sources cannot be packed; the message says why."""


def collection_version(root=COLLECTION):
    """The collection's version: MANIFEST.json in an installed collection, galaxy.yml in a checkout."""
    manifest = root / "MANIFEST.json"
    if manifest.is_file():
        return json.loads(manifest.read_text())["collection_info"]["version"]
    galaxy = root / "galaxy.yml"
    if galaxy.is_file():
        for line in galaxy.read_text().splitlines():
            if line.startswith("version:"):
                return line.split(":", 1)[1].strip().strip("'\"")
    raise AgentsError(f"no MANIFEST.json or galaxy.yml with a version under {root}")


def _imports(source, name):
    """The modules a source file imports (absolute names; relative imports are refused)."""
    out = set()
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AgentsError(f"{name}: relative import (write it absolute: {PACKAGE}.... or {MODULE_UTILS}....)")
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def sources(root=COLLECTION):
    """Archive name -> content of every file the artifact holds (without its _build module)."""
    package_dir = root / "agents" / PACKAGE
    if not package_dir.is_dir():
        raise AgentsError(f"no agents package at {package_dir}")
    files = {
        str(path.relative_to(package_dir.parent)): path.read_bytes()
        for path in sorted(package_dir.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    utils_dir = root / "plugins" / "module_utils"
    pending, seen = list(files.items()), set()
    while pending:
        name, content = pending.pop()
        for module in sorted(_imports(content, name)):
            if module == "ansible" or module.startswith("ansible."):
                raise AgentsError(f"{name} imports {module}: the hosts have no Ansible")
            if not module.startswith(MODULE_UTILS + "."):
                continue
            util = module[len(MODULE_UTILS) + 1 :].split(".")[0]
            source = utils_dir / f"{util}.py"
            if not source.is_file():
                # `from ...module_utils.x import Name` also yields `x.Name`; x itself is checked.
                if "." in module[len(MODULE_UTILS) + 1 :]:
                    continue
                raise AgentsError(f"{name} imports {module}: no such module utility in {utils_dir}")
            if util in seen:
                continue
            seen.add(util)
            arcname = "/".join(MODULE_UTILS.split(".")) + f"/{util}.py"
            files[arcname] = source.read_bytes()
            pending.append((arcname, files[arcname]))
    if seen:
        parts = MODULE_UTILS.split(".")
        for depth in range(1, len(parts) + 1):
            files.setdefault("/".join(parts[:depth]) + "/__init__.py", b"")
    files["__main__.py"] = b"from webinfra_agents.__main__ import main\n\nraise SystemExit(main())\n"
    return files


def digest(files):
    """A short digest of the artifact's contents (names and bytes)."""
    sha = hashlib.sha256()
    for name in sorted(files):
        sha.update(name.encode() + b"\0" + files[name] + b"\0")
    return sha.hexdigest()[:12]


def build(dest_dir, root=COLLECTION):
    """Build the artifact under dest_dir (reused when present); returns its path.

    The file name carries the version (`webinfra-agents-<collection version>+<digest>.pyz`);
    it is written to a temporary file and renamed, so concurrent builds never see half a file.
    """
    files = sources(root)
    version = f"{collection_version(root)}+{digest(files)}"
    files[f"{PACKAGE}/_build.py"] = f'"""Written by the build."""\n\nVERSION = "{version}"\n'.encode()
    dest_dir = Path(dest_dir)
    target = dest_dir / f"webinfra-agents-{version}.pyz"
    if target.is_file():
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".webinfra-agents-", suffix=".pyz", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(SHEBANG)
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in sorted(files):
                    info = zipfile.ZipInfo(name, date_time=EPOCH)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, files[name])
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def cache_dir():
    """Where the controller keeps built artifacts: $XDG_CACHE_HOME/webinfra/agents (~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "webinfra" / "agents"
