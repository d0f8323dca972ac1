"""`python tools/bench [--only STEP,...]`: the benchmarks (see bench/__init__.py)."""

import sys
from pathlib import Path

# Run as a directory: its parent (tools/) holds the package and the probes it shares.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cli import main  # noqa: E402

sys.exit(main())
