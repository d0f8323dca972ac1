#!/usr/bin/env bash
# Builds the collection artifact, installs it into an empty collections path and checks that
# ansible-doc finds its roles and plugins from there alone (what a Galaxy user gets).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.venv/bin"
out="$root/.cache/build"
# The declared minimum versions are the ones this environment tests with.
"$bin/python" "$root/tools/tested_versions.py"
rm -rf "$out"
mkdir -p "$out/dist" "$out/collections"
"$bin/ansible-galaxy" collection build "$root" --output-path "$out/dist" --force
artifact=$(ls "$out"/dist/webinfra-distributed-*.tar.gz)
echo "built $(basename "$artifact") ($(du -k "$artifact" | cut -f1) KiB, $(tar tzf "$artifact" | wc -l) entries)"
# Development files, the lab inventories (lab passwords, useless without the lab tool) and the
# lab tool's tests stay out of the artifact; the production example ships.
listing=$(tar tzf "$artifact")
if grep -E '^(molecule|tools|bench|\.ci|\.venv|\.cache|inventories/lab|inventories/lab-ha|tests/unit/tools)(/|$)|\.pki/|(^|/)ansible\.cfg$' <<<"$listing"; then
  echo "build-check: development or lab files leaked into the artifact (see build_ignore in galaxy.yml)" >&2
  exit 1
fi
grep -q '^inventories/production.example/hosts.yml$' <<<"$listing" \
  || { echo "build-check: inventories/production.example missing from the artifact" >&2; exit 1; }
printf "[defaults]\n" > "$out/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$out/collections" ANSIBLE_CONFIG="$out/ansible.cfg"
cd "$out"
"$bin/ansible-galaxy" collection install "$artifact" -p "$out/collections" --no-deps
roles=$("$bin/ansible-doc" -t role -l webinfra.distributed)
filters=$("$bin/ansible-doc" -t filter -l webinfra.distributed)
lookups=$("$bin/ansible-doc" -t lookup -l webinfra.distributed)
modules=$("$bin/ansible-doc" -t module -l webinfra.distributed)
echo "$roles"; echo "$filters"; echo "$lookups"; echo "$modules"
for role in haproxy nginx_app stack; do
  grep -q "webinfra.distributed.$role" <<<"$roles" || { echo "build-check: role $role not found by ansible-doc" >&2; exit 1; }
  "$bin/ansible-doc" -t role "webinfra.distributed.$role" >/dev/null
done
grep -q "webinfra.distributed.host_address" <<<"$filters" || { echo "build-check: filter host_address missing" >&2; exit 1; }
grep -q "webinfra.distributed.content_hash" <<<"$lookups" || { echo "build-check: lookup content_hash missing" >&2; exit 1; }
# Every module in plugins/modules must be documented from the installed artifact.
for src in "$root"/plugins/modules/*.py; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .py)
  "$bin/ansible-doc" -t module "webinfra.distributed.$name" >/dev/null
  grep -q "webinfra.distributed.$name" <<<"$modules" || { echo "build-check: module $name missing" >&2; exit 1; }
done
# The installed collection builds the host agents' artifact on its own (its version from
# MANIFEST.json), and every agent's command runs from it with nothing but the standard library.
pyz=$(XDG_CACHE_HOME="$out/cache" "$bin/ansible" localhost -c local -o -m ansible.builtin.debug \
  -a "msg={{ lookup('webinfra.distributed.agents_artifact') }}" | sed -n 's/.*"msg": "\([^"]*\)".*/\1/p')
[ -f "$pyz" ] || { echo "build-check: the agents' artifact was not built from the installed collection" >&2; exit 1; }
for entry in webinfra-ha-agent webinfra-backup webinfra-acme; do
  "$bin/python" -I "$pyz" "$entry" --version
done
# The site playbook resolves from the installed collection.
for playbook in site switchover failover health restore rebuild; do
  "$bin/ansible-playbook" --syntax-check -i localhost, "webinfra.distributed.$playbook" >/dev/null
done
echo "build-check: artifact installs and documents its content"
