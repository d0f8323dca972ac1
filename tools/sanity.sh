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

# The shellcheck sanity test is skipped (with only a warning) when shellcheck is missing.
if ! command -v shellcheck >/dev/null; then
  echo "==> installing shellcheck (apt)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo -n"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null \
    || { $sudo_cmd apt-get update -q >/dev/null && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null; }
fi

# Outside the checkout: inside a git work tree, ansible-test only sees files git tracks there.
work="${TMPDIR:-/tmp}/webinfra-sanity/ansible_collections/webinfra/distributed"
rm -rf "$work"
mkdir -p "$work"
cd "$root"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$work"
cd "$work"
"$venv/bin/ansible-test" sanity --venv --python "$pyver" --color "$@"
