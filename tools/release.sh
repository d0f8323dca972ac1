#!/usr/bin/env bash
# make release: a release of the version galaxy.yml names (the collection's one version source).
#   1. refuses a dirty tree, an existing tag, a version whose release exists but is not committed;
#   2. antsibull-changelog release: the fragments in changelogs/fragments become that version's
#      entry in changelogs/changelog.yaml and CHANGELOG.rst (skipped when already released);
#   3. commits that, builds the artifact and checks it installs and documents itself alone
#      (tools/build-check.sh), keeps it as webinfra-distributed-<version>.tar.gz;
#   4. tags v<version> (annotated). Pushing the tag and `ansible-galaxy collection publish` stay
#      with the maintainer.
# Before: set the new version in galaxy.yml (semantic versioning from the fragments' sections).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.venv/bin"
# As under make: the venv's tools first, the collection found through the checkout's link
# (antsibull-changelog asks ansible-doc which plugins are new).
export PATH="$bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$root/.cache/collections"
cd "$root"
test -e .cache/collections/ansible_collections/webinfra/distributed \
  || { echo "release: run it as make release (it links the checkout as a collection)" >&2; exit 1; }
version=$("$bin/python" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
tag="v$version"
if [ -n "$(git status --porcelain)" ]; then
  echo "release: the working tree has changes; commit or stash them first" >&2
  exit 1
fi
if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
  echo "release: tag $tag exists; set the next version in galaxy.yml" >&2
  exit 1
fi
"$bin/antsibull-changelog" lint
released=$("$bin/python" -c 'import sys, yaml; print(sys.argv[1] in (yaml.safe_load(open("changelogs/changelog.yaml"))["releases"] or {}))' "$version")
if [ "$released" = False ]; then
  if ! ls changelogs/fragments/*.yml >/dev/null 2>&1; then
    echo "release: no changelog fragment since the last release: nothing to release" >&2
    exit 1
  fi
  "$bin/antsibull-changelog" release --version "$version"
  git add -A changelogs CHANGELOG.rst
  git commit -q -m "Release $version"
  echo "release: committed the changelog of $version"
fi
"$root/tools/build-check.sh" .venv .venv-newest
cp "$root"/.cache/build/dist/webinfra-distributed-"$version".tar.gz "$root/"
git tag -a "$tag" -m "webinfra.distributed $version"
echo "release: $tag tagged; artifact webinfra-distributed-$version.tar.gz"
echo "  publish: git push origin $tag && ansible-galaxy collection publish webinfra-distributed-$version.tar.gz"
