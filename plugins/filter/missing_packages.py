# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter missing_packages: the packages of a list that are not installed yet."""

from __future__ import annotations

DOCUMENTATION = r"""
name: missing_packages
short_description: The packages of a list that are not installed yet
version_added: 0.6.0
author: webinfra maintainers (@webinfra)
description:
  - Returns, in order, the packages of the input that the list of installed packages lacks.
  - When the installed packages are not known (C(none)), every package is returned, so the
    caller runs its package step (which is idempotent).
options:
  _input:
    description: Debian package names.
    type: list
    elements: str
    required: true
  installed:
    description:
      - Names of the installed packages (what C(site.yml) reads into C(webinfra_installed_packages)),
        or C(none).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Install what is missing
  ansible.builtin.apt:
    name: "{{ __wanted }}"
  vars:
    __wanted: [haproxy, socat]
  when: __wanted | webinfra.distributed.missing_packages(webinfra_installed_packages | default(none)) | length > 0
"""

RETURN = r"""
_value:
  description: The packages still to install.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def missing_packages(packages, installed):
    if isinstance(packages, str) or not hasattr(packages, "__iter__"):
        raise AnsibleFilterError("missing_packages: expected a list of package names")
    packages = [str(p) for p in packages]
    if installed is None:
        return packages
    have = {str(p) for p in installed}
    return [p for p in packages if p not in have]


class FilterModule:
    def filters(self):
        return {"missing_packages": missing_packages}
