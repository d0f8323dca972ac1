#!/usr/bin/env bash
# Prints the path of a Python >= 3.12 for the newest ansible-core's test lane (.venv-newest), the
# newest found first: PYTHON_NEWEST when set, then python3.14 .. python3.12 on PATH, the system
# python3, and pyenv's installs ($(pyenv root)/versions/3.1[234]*, called by full path: pyenv's
# shims answer "command not found" for a version pyenv has not selected). Prints nothing and
# exits 1 when there is none.
set -uo pipefail

works() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

candidates=()
[ -n "${PYTHON_NEWEST:-}" ] && candidates+=("$PYTHON_NEWEST")
for minor in 14 13 12; do
  command -v "python3.$minor" >/dev/null 2>&1 && candidates+=("$(command -v "python3.$minor")")
done
command -v python3 >/dev/null 2>&1 && candidates+=("$(command -v python3)")
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for minor in 14 13 12; do
  while read -r dir; do
    [ -n "$dir" ] && candidates+=("$dir/bin/python3.$minor")
  done < <(find "$root/versions" -maxdepth 1 -name "3.$minor.*" 2>/dev/null | sort -rV)
done
for python in "${candidates[@]}"; do
  if works "$python"; then
    echo "$python"
    exit 0
  fi
done
exit 1
