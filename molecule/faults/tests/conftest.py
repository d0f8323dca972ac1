import sys
from pathlib import Path

# The scenarios' test helpers, and the probes the tests share with the benchmarks (tools/probes.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources"))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
