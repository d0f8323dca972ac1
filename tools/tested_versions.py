"""The versions the collection declares are the versions make test runs with.

With the oldest controller (.venv, constraints.txt): galaxy.yml's dependency floors must be the
versions installed there and meta/runtime.yml's requires_ansible floor its ansible-core release,
so a declared minimum that no test ran with fails here (moving a pin means moving the
declaration, and the other way round). With --within, for the newest controller
(.venv-newest): every installed version must lie inside the declared ranges, and
requires_ansible must have an upper bound (the newest release CI proves). --missing prints the
declared dependencies this controller's `ansible` bundle and collections path do not hold
(ansible.mysql before ansible 14), for tools/bundled_collections.py.

    python tools/tested_versions.py [--within | --missing]      (build-check runs it)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet

ROOT = Path(__file__).resolve().parent.parent


def floor(spec: str) -> str:
    match = re.search(r">=\s*([0-9][0-9.]*)", spec)
    if not match:
        raise SystemExit(f"tested_versions: '{spec}' has no >= floor")
    return match.group(1)


def within(version: str, spec: str) -> bool:
    """Whether version satisfies spec (comma-separated clauses: >=, <, ... as galaxy.yml and
    requires_ansible write them), read by packaging, which ansible-core depends on."""
    try:
        return SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidSpecifier:
        raise SystemExit(f"tested_versions: cannot read the version range '{spec}'") from None


def collection_bases() -> list[Path]:
    """Where this controller finds collections: its collections path, then the bundle's."""
    import ansible_collections  # noqa: PLC0415 - the ansible bundle's collections

    paths = [Path(p) / "ansible_collections" for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(":") if p]
    return paths + [Path(base) for base in ansible_collections.__path__]


def installed_collection(name: str) -> str | None:
    namespace, collection = name.split(".")
    for base in collection_bases():
        manifest = base / namespace / collection / "MANIFEST.json"
        if manifest.exists():
            return yaml.safe_load(manifest.read_text())["collection_info"]["version"]
    return None


def declared() -> tuple[dict, str]:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    return galaxy.get("dependencies", {}), runtime["requires_ansible"]


def problems(mode: str) -> list[str]:
    dependencies, requires = declared()
    core = metadata.version("ansible-core")
    out = []
    for name, spec in sorted(dependencies.items()):
        have = installed_collection(name)
        if have is None:
            out.append(f"galaxy.yml declares {name} '{spec}' but this controller has none (make collection-link)")
        elif mode == "floor" and floor(spec) != have:
            out.append(f"galaxy.yml declares {name} '{spec}' but make test runs {have}")
        elif not within(have, spec):
            out.append(f"galaxy.yml declares {name} '{spec}' but make test runs {have}")
    if mode == "floor" and floor(requires) != core:
        out.append(f"meta/runtime.yml requires ansible-core {requires} but make test runs {core}")
    if mode == "within":
        if "<" not in requires:
            out.append(
                f"meta/runtime.yml requires ansible-core '{requires}': no upper bound, but CI proves only up to {core}"
            )
        elif not within(core, requires):
            out.append(f"meta/runtime.yml requires ansible-core '{requires}' but make test runs {core}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Declared versions against the tested ones.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--within", action="store_true", help="the newest controller: inside the ranges")
    group.add_argument("--missing", action="store_true", help="print the dependencies not installed")
    args = parser.parse_args()
    if args.missing:
        dependencies, _requires = declared()
        sys.stdout.write(" ".join(name for name in sorted(dependencies) if installed_collection(name) is None) + "\n")
        return 0
    found = problems("within" if args.within else "floor")
    for line in found:
        sys.stderr.write(f"tested_versions: {line}\n")
    if not found:
        what = "inside the declared ranges" if args.within else "the declared minimums"
        sys.stdout.write(
            f"tested_versions: ansible-core {metadata.version('ansible-core')}: the tested versions are {what}\n"
        )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
