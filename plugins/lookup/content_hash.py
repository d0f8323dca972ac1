# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup returning a SHA-256 digest of a file or of a directory tree on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: content_hash
short_description: SHA-256 digest of a file or directory tree on the controller
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Returns a SHA-256 hex digest of the content of a file, or of a directory tree (relative
    paths, file modes' executable bit and contents, in sorted order; timestamps ignored).
  - The same content always gives the same digest, so it names an application release.
  - C(__pycache__) directories and C(.pyc) files are ignored.
options:
  _terms:
    description: Paths of files or directories on the controller.
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: Release id of an application directory
  ansible.builtin.debug:
    msg: "{{ lookup('webinfra.distributed.content_hash', playbook_dir ~ '/app') }}"
"""

RETURN = r"""
_raw:
  description: One hex digest per path.
  type: list
  elements: str
"""

import hashlib
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

IGNORED_DIRS = {"__pycache__", ".git"}


def tree_digest(path):
    """SHA-256 of a file's content, or of a directory tree's names, modes and contents."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        _feed_file(digest, path)
        return digest.hexdigest()
    if not os.path.isdir(path):
        raise FileNotFoundError(path)
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            executable = os.access(full, os.X_OK)
            digest.update(f"{rel}\0{int(executable)}\0".encode())
            _feed_file(digest, full)
            digest.update(b"\0")
    return digest.hexdigest()


def _feed_file(digest, path):
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(65536), b""):
            digest.update(chunk)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        results = []
        for term in terms:
            try:
                results.append(tree_digest(os.path.expanduser(str(term))))
            except (FileNotFoundError, PermissionError) as exc:
                raise AnsibleLookupError(f"content_hash: cannot read {term}: {exc}") from exc
        return results
