#!/usr/bin/env bash
# Runs commands at once and prints each one's output whole, in the order given, once all ended:
#   tools/parallel.sh "LABEL" "COMMAND" ["LABEL" "COMMAND" ...]
# make test uses it for the checks that run once per controller (sanity, unit tests): the two
# runs wait on different things (pylint's CPU, network, disk) and neither reads the other's files.
# Exit status: 0 when every command passed, else 1 (the failed ones are named at the end).
set -uo pipefail
if [ $# -eq 0 ] || [ $(($# % 2)) -ne 0 ]; then
  echo "usage: tools/parallel.sh LABEL COMMAND [LABEL COMMAND ...]" >&2
  exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/webinfra-parallel.XXXXXX")
trap 'rm -rf "$dir"' EXIT
labels=()
pids=()
n=0
while [ $# -gt 0 ]; do
  labels+=("$1")
  bash -c "$2" >"$dir/$n.out" 2>&1 &
  pids+=($!)
  n=$((n + 1))
  shift 2
done
failed=()
for i in "${!pids[@]}"; do
  rc=0
  wait "${pids[$i]}" || rc=$?
  echo "==> ${labels[$i]}"
  cat "$dir/$i.out"
  [ "$rc" -eq 0 ] || failed+=("${labels[$i]} (exit $rc)")
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
