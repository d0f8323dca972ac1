"""Puts collections of a newer `ansible` bundle on the collections path of an older one.

The oldest supported controller (ansible 12 / ansible-core 2.19, the `.venv`) bundles no
ansible.mysql, a dependency of this collection: a user there gets it from Galaxy when installing
webinfra.distributed. Galaxy is not reachable from the lab machines, so this takes the same
release from the `ansible` wheel that constraints-newest.txt pins (PyPI is reachable) and
unpacks only the named collections under DEST/ansible_collections/. The wheel is kept in
~/.cache/webinfra/wheels; a collection already unpacked at that version is left alone.

    python tools/bundled_collections.py --dest .cache/collections ansible.mysql
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path.home() / ".cache" / "webinfra" / "wheels"


def pinned_bundle(constraints: Path) -> str:
    """The `ansible` release a constraints file pins (ansible==X.Y.Z)."""
    match = re.search(r"^ansible==([0-9.]+)\s*$", constraints.read_text(), re.MULTILINE)
    if not match:
        raise SystemExit(f"bundled_collections: {constraints} pins no ansible==<version>")
    return match.group(1)


def wheel(version: str) -> Path:
    path = WHEELS / f"ansible-{version}-py3-none-any.whl"
    if not path.exists():
        WHEELS.mkdir(parents=True, exist_ok=True)
        # The wheel is pure Python; the bundle's own Python floor does not matter for unpacking.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--dest",
                str(WHEELS),
                f"ansible=={version}",
            ],
            check=True,
        )
    return path


def collection_version(path: Path) -> str | None:
    manifest = path / "MANIFEST.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def unpack(archive: Path, name: str, dest: Path) -> str:
    namespace, collection = name.split(".")
    prefix = f"ansible_collections/{namespace}/{collection}/"
    target = dest / "ansible_collections" / namespace / collection
    with zipfile.ZipFile(archive) as bundle:
        members = [member for member in bundle.namelist() if member.startswith(prefix)]
        if not members:
            raise SystemExit(f"bundled_collections: {archive.name} holds no {name}")
        wanted = json.loads(bundle.read(prefix + "MANIFEST.json"))["collection_info"]["version"]
        if collection_version(target) == wanted:
            return f"{name} {wanted} already in {dest}"
        shutil.rmtree(target, ignore_errors=True)
        staging = dest / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        for member in members:
            bundle.extract(member, staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / prefix).rename(target)
        shutil.rmtree(staging)
    return f"{name} {wanted} unpacked into {dest} (from {archive.name})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="a collections path")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints-newest.txt")
    parser.add_argument("collections", nargs="+", help="namespace.name of each collection")
    args = parser.parse_args()
    archive = wheel(pinned_bundle(args.constraints))
    for name in args.collections:
        sys.stdout.write(unpack(archive, name, args.dest) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
