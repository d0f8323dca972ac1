# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`python3 webinfra-agents.pyz COMMAND [ARGS...]`: runs one agent (COMMAND: an entry name).

The hosts' /usr/local/sbin/<entry name> wrappers call this; `<entry name> --version` prints the
artifact's version.
"""

from __future__ import annotations

import importlib
import sys

from webinfra_agents import ENTRY_POINTS, version


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"webinfra-agents {version()}")
        return 0
    if not argv or argv[0] not in ENTRY_POINTS:
        sys.stderr.write(f"usage: webinfra-agents.pyz {{{','.join(ENTRY_POINTS)}}} [ARGS...] | --version\n")
        return 2
    name, args = argv[0], argv[1:]
    if args[:1] == ["--version"]:
        print(f"{name} {version()}")
        return 0
    sys.argv[0] = name
    return importlib.import_module(ENTRY_POINTS[name]).main(args)


if __name__ == "__main__":
    raise SystemExit(main())
