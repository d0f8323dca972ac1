#!/usr/bin/env bash
# Builds the collection artifact and, for each controller venv given (make passes the oldest and
# the newest: .venv .venv-newest), installs it OFFLINE into an empty collections path beside that
# controller's `ansible` bundle, resolving its dependencies there as a user's install does, and
# checks that nothing but webinfra.distributed was installed (no second copy of a dependency),
# that ansible-doc finds its roles and plugins from there and that its playbooks resolve.
#   tools/build-check.sh .venv .venv-newest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$#" -gt 0 ] || set -- .venv
bin="$root/$1/bin"
out="$root/.cache/build"
# The declared minimum versions are the ones the first (oldest) controller tests with; every
# later controller's versions are inside the declared ranges.
"$bin/python" "$root/tools/tested_versions.py"
for venv in "${@:2}"; do
  "$root/$venv/bin/python" "$root/tools/tested_versions.py" --within
done
rm -rf "$out"
mkdir -p "$out/dist"
"$bin/ansible-galaxy" collection build "$root" --output-path "$out/dist" --force
artifact=$(ls "$out"/dist/webinfra-distributed-*.tar.gz)
echo "built $(basename "$artifact") ($(du -k "$artifact" | cut -f1) KiB, $(tar tzf "$artifact" | wc -l) entries)"
# Development files, the lab inventories (lab passwords, useless without the lab tool) and the
# lab tool's tests stay out of the artifact; the production example ships.
listing=$(tar tzf "$artifact")
if grep -E '^(molecule|tools|bench|\.ci|\.venv|\.venv-newest|\.cache|inventories/lab|inventories/lab-ha|tests/unit/tools)(/|$)|\.pki/|(^|/)ansible\.cfg$' <<<"$listing"; then
  echo "build-check: development or lab files leaked into the artifact (see build_ignore in galaxy.yml)" >&2
  exit 1
fi
grep -q '^inventories/production.example/hosts.yml$' <<<"$listing" \
  || { echo "build-check: inventories/production.example missing from the artifact" >&2; exit 1; }
printf "[defaults]\n" > "$out/ansible.cfg"
export ANSIBLE_CONFIG="$out/ansible.cfg"
cd "$out"

# check_controller VENV: the artifact installed offline beside VENV's bundle, then used from there.
check_controller() {
  local bin="$root/$1/bin" dest="$out/$1/collections" deps="$out/$1/deps" core
  core=$("$bin/python" -c 'import ansible; print(ansible.__version__)')
  echo "==> build-check with ansible-core $core ($1)"
  mkdir -p "$dest" "$deps"
  # What the bundle lacks of the declared dependencies (ansible.mysql before ansible 14) comes,
  # as from Galaxy for a user, from the newest bundle's wheel (tools/bundled_collections.py).
  local missing
  missing=$(ANSIBLE_COLLECTIONS_PATH='' "$bin/python" "$root/tools/tested_versions.py" --missing)
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086  # one word per collection
    "$bin/python" "$root/tools/bundled_collections.py" --dest "$deps" $missing
  fi
  export ANSIBLE_COLLECTIONS_PATH="$dest:$deps"
  "$bin/ansible-galaxy" collection install --offline "$artifact" -p "$dest"
  local installed
  installed=$(cd "$dest/ansible_collections" && find . -mindepth 2 -maxdepth 2 | sed "s|^\./||" | sort | xargs)
  if [ "$installed" != "webinfra/distributed" ]; then
    echo "build-check: installing beside ansible-core $core's bundle added more than webinfra.distributed: $installed" >&2
    exit 1
  fi
  local roles filters lookups modules
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
  local src name
  for src in "$root"/plugins/modules/*.py; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .py)
    "$bin/ansible-doc" -t module "webinfra.distributed.$name" >/dev/null
    grep -q "webinfra.distributed.$name" <<<"$modules" || { echo "build-check: module $name missing" >&2; exit 1; }
  done
  # The installed collection builds the host agents' artifact on its own (its version from
  # MANIFEST.json), and every agent's command runs from it with nothing but the standard library.
  local pyz entry
  pyz=$(XDG_CACHE_HOME="$out/$1/cache" "$bin/ansible" localhost -c local -m ansible.builtin.debug \
    -a "msg={{ lookup('webinfra.distributed.agents_artifact') }}" | sed -n 's/.*"msg": "\([^"]*\)".*/\1/p')
  [ -f "$pyz" ] || { echo "build-check: the agents' artifact was not built from the installed collection" >&2; exit 1; }
  for entry in webinfra-ha-agent webinfra-backup webinfra-acme; do
    "$bin/python" -I "$pyz" "$entry" --version
  done
  # The site playbook resolves from the installed collection.
  local playbook
  for playbook in site switchover failover health restore rebuild; do
    "$bin/ansible-playbook" --syntax-check -i localhost, "webinfra.distributed.$playbook" >/dev/null
  done
}

for venv in "$@"; do
  check_controller "$venv"
done
echo "build-check: artifact installs offline beside each controller's bundle and documents its content"
