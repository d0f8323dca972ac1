"""Make `ansible_collections.webinfra.distributed` (make links it) and the agents importable from a checkout."""

import itertools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".cache" / "collections"
link = COLLECTIONS / "ansible_collections" / "webinfra" / "distributed"
if not link.exists():
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(ROOT)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
# The host agents' package (agents/webinfra_agents) and the tools are imported by name.
for extra in (ROOT / "tools", ROOT / "agents"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture
def ticking_clock():
    """A clock for wait loops: each call is `step` seconds after the previous one."""

    def make(step=1.0):
        ticks = itertools.count(step=step)
        return lambda: float(next(ticks))

    return make
