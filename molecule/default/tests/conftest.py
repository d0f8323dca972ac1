import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resources"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "platform_independent: checks that do not depend on the Debian release (preflight logic) or "
        "that another step covers there (`make test` runs them on the first release only)",
    )
