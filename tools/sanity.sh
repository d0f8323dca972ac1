#!/usr/bin/env bash
# ansible-test sanity, offline-capable: VENV=.venv-newest tools/sanity.sh for the newest ansible-core.
# ansible-test needs the collection under .../ansible_collections/<ns>/<name>/ and bootstraps
# pip in each test venv with a script it downloads; where that host is unreachable, an
# equivalent stand-in (ensurepip + pip install) is written to the cache path it looks at.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# VENV: the controller's venv whose ansible-test runs (make sanity runs the oldest, then the newest).
venv=$root/${VENV:-.venv}
py=$venv/bin/python
pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

pipver=$("$py" - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements as m
print(re.search(r"pip='([^']+)'", inspect.getsource(m.get_venv_packages)).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pipver//./_}.py"
if [ ! -s "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  cat > "$cache" <<'PY'
# Offline stand-in for ansible-test's get-pip download (written by webinfra tools/sanity.sh).
import subprocess
import sys

packages = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--upgrade", *packages])
PY
fi

# The shellcheck sanity test is skipped (with only a warning) when shellcheck is missing. The lab
# tool installs it under its host set-up lock (make test builds the lab images meanwhile).
if ! command -v shellcheck >/dev/null; then
  python3 "$root/tools/lab.py" deps --shellcheck
fi

# Outside the checkout: inside a git work tree, ansible-test only sees files git tracks there.
# One work tree per controller: make test runs the two controllers' sanity at once.
work="${TMPDIR:-/tmp}/webinfra-sanity-$(basename "$venv")/ansible_collections/webinfra/distributed"
rm -rf "$work"
mkdir -p "$work"
cd "$root"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$work"
cd "$work"
"$venv/bin/ansible-test" sanity --venv --python "$pyver" --color "$@"
