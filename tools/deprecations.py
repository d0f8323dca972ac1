"""Deprecation warnings of this collection's own code in an Ansible or Molecule log.

The newest controller's lane of `make test` treats them as failures (tools/molecule.sh): each
`[DEPRECATION WARNING]` whose `Origin:` is a file of this checkout (roles, playbooks, the
Molecule scenarios) or of an installed webinfra.distributed, or whose text names the collection.
Deprecations of other code (ansible-core's own, other collections, Python packages) are left to
their owners.

    python tools/deprecations.py LOG [--root DIR]     exit 1 and a report when any is ours
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# A log line as Molecule and tools/molecule.sh write it: a time stamp, ANSI colours, a frame.
DECORATION = re.compile(r"\x1b\[[0-9;]*m|^\d\d:\d\d:\d\d |^\s*│\s?")
COLLECTION = "webinfra/distributed"


def plain(line: str) -> str:
    previous = None
    while previous != line:
        previous, line = line, DECORATION.sub("", line)
    return line.rstrip("\n")


def own_deprecations(lines: list[str], root: str) -> list[str]:
    """The deprecation warnings (text and origin) that point at this collection's code."""
    text = [plain(line) for line in lines]
    found = []
    for index, line in enumerate(text):
        if "[DEPRECATION WARNING]" not in line:
            continue
        message = line[line.index("[DEPRECATION WARNING]") :]
        # The message may wrap (Molecule's frame): it ends at the Origin line or a blank one.
        origin = ""
        for follow in text[index + 1 : index + 8]:
            if follow.startswith("Origin:"):
                origin = follow[len("Origin:") :].strip()
                break
            if not follow.strip() or "[" in follow[:2]:
                break
            message += " " + follow.strip()
        ours = (
            origin.startswith(root.rstrip("/") + "/")
            or COLLECTION in origin
            or "webinfra.distributed" in message
            or COLLECTION in message
        )
        if ours:
            found.append(f"{message}" + (f" (at {origin})" if origin else ""))
    return sorted(set(found))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent), help="the checkout")
    args = parser.parse_args()
    found = own_deprecations(args.log.read_text(errors="replace").splitlines(), args.root)
    for entry in found:
        sys.stdout.write(f"deprecation of our own code: {entry}\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
