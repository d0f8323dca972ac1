# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter weak_secrets."""

from __future__ import annotations

DOCUMENTATION = r"""
name: weak_secrets
short_description: Names of secrets that must not be used outside the lab
version_added: 0.3.0
author: webinfra maintainers (@webinfra)
description:
  - Takes a mapping of variable names to secret values and returns the names whose value is
    empty, one of the collection's lab or Molecule default passwords, or shorter than
    O(min_length) characters. Only names are returned, never values.
options:
  _input:
    description: Variable names mapped to their values.
    type: dict
    required: true
  min_length:
    description: Shortest acceptable secret.
    type: int
    default: 12
"""

EXAMPLES = r"""
- name: Refuse weak passwords outside the lab
  ansible.builtin.assert:
    that: webinfra_lab or __weak | length == 0
    fail_msg: "outside the lab, {{ __weak | join(', ') }} must be strong"
  vars:
    __weak: "{{ {'exporters_mysqld_password': exporters_mysqld_password} | webinfra.distributed.weak_secrets }}"
"""

RETURN = r"""
_value:
  description: The names of the weak secrets, sorted.
  type: list
  elements: str
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.secrets import weak_secrets


class FilterModule:
    def filters(self):
        return {"weak_secrets": weak_secrets}
