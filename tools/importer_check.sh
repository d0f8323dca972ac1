#!/usr/bin/env bash
# make lint: galaxy-importer (what Galaxy runs on a published artifact) on a freshly built
# artifact: ansible-lint over its content, its docs and metadata. Passes only when it completes
# with no warning or error and loads no plugin twice. ansible-test is off (make sanity runs it).
# The dependencies the linter must resolve that the `ansible` bundle lacks (ansible.mysql before
# ansible 14) are put on its Python path from the newest bundle (tools/bundled_collections.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.cache/importer"
rm -rf "$work"
mkdir -p "$work/dist"
cd "$work"
ansible-galaxy collection build "$root" --output-path "$work/dist" --force >/dev/null
artifact=$(ls "$work"/dist/webinfra-distributed-*.tar.gz)
missing=$(ANSIBLE_COLLECTIONS_PATH='' python "$root/tools/tested_versions.py" --missing)
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086  # one word per collection
  python "$root/tools/bundled_collections.py" --dest "$work/deps" $missing >/dev/null
fi
printf '[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = True\n' >"$work/galaxy-importer.cfg"
status=0
GALAXY_IMPORTER_CONFIG="$work/galaxy-importer.cfg" PYTHONPATH="$work/deps" ANSIBLE_COLLECTIONS_PATH='' \
  python -m galaxy_importer.main "$artifact" >"$work/importer.log" 2>&1 || status=$?
problems=$(grep -E 'WARNING|ERROR' "$work/importer.log" || true)
twice=$(grep '^Loading ' "$work/importer.log" | sort | uniq -d || true)
if [ "$status" -ne 0 ] || [ -n "$problems" ] || [ -n "$twice" ] \
  || ! grep -q '^Importer processing completed successfully' "$work/importer.log"; then
  cat "$work/importer.log"
  [ -z "$twice" ] || echo "importer_check: loaded twice: $twice" >&2
  echo "importer_check: galaxy-importer did not pass cleanly (exit $status; log above)" >&2
  exit 1
fi
echo "importer_check: $(basename "$artifact"): galaxy-importer clean ($(grep -c '^Loading ' "$work/importer.log") plugins and roles loaded)"
