#!/usr/bin/env bash
# make lint: ansible-builder introspect reads the execution-environment metadata of every
# collection on COLLECTIONS_PATH (meta/execution-environment.yml): it must succeed, say nothing
# on stderr, and list this collection's Python and system requirements.
set -euo pipefail
path=${1:?usage: tools/ee_check.sh COLLECTIONS_PATH}
err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$(ansible-builder introspect --sanitize "$path" 2>"$err")
if [ -s "$err" ]; then
  echo "ee_check: ansible-builder introspect wrote to stderr:" >&2
  cat "$err" >&2
  exit 1
fi
echo "$out"
for kind in python system; do
  awk -v kind="$kind:" '$0 == kind {on = 1; next} /^[a-z]+:$/ {on = 0} on' <<<"$out" \
    | grep -q "from collection webinfra.distributed" \
    || { echo "ee_check: no $kind requirement of webinfra.distributed in the introspection" >&2; exit 1; }
done
# The example execution-environment file of the docs is a valid ansible-builder 3 definition.
context=$(mktemp -d)
trap 'rm -f "$err"; rm -rf "$context"' EXIT
ansible-builder create -f docs/execution-environment.yml --context "$context" --output-filename Containerfile >/dev/null
test -s "$context/Containerfile"
echo "ee_check: introspection clean; docs/execution-environment.yml builds a context"
