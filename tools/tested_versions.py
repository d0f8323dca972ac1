"""The versions the collection declares are the versions make test runs with.

galaxy.yml's dependency floors must be the versions installed in the development environment
(constraints.txt pins them), and meta/runtime.yml's requires_ansible floor must be the installed
ansible-core release: a declared minimum that no test ran with fails here, so moving a pin means
moving the declaration (and the other way round).

    python tools/tested_versions.py            (build-check runs it)
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def floor(spec: str) -> str:
    match = re.search(r">=\s*([0-9][0-9.]*)", spec)
    if not match:
        raise SystemExit(f"tested_versions: '{spec}' has no >= floor")
    return match.group(1)


def installed_collection(name: str) -> str:
    namespace, collection = name.split(".")
    import ansible_collections  # noqa: PLC0415 - the ansible bundle's collections

    for base in ansible_collections.__path__:
        manifest = Path(base) / namespace / collection / "MANIFEST.json"
        if manifest.exists():
            return yaml.safe_load(manifest.read_text())["collection_info"]["version"]
    raise SystemExit(f"tested_versions: {name} is not installed in the development environment")


def problems() -> list[str]:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    out = []
    for name, spec in sorted(galaxy.get("dependencies", {}).items()):
        have = installed_collection(name)
        if floor(spec) != have:
            out.append(f"galaxy.yml declares {name} '{spec}' but make test runs {have}")
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    core = metadata.version("ansible-core")
    if floor(runtime["requires_ansible"]) != core:
        out.append(f"meta/runtime.yml requires ansible-core {runtime['requires_ansible']} but make test runs {core}")
    return out


def main() -> int:
    found = problems()
    for line in found:
        sys.stderr.write(f"tested_versions: {line}\n")
    if not found:
        sys.stdout.write("tested_versions: the declared minimums are the tested versions\n")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
