# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter subject_alt_names."""

from __future__ import annotations

DOCUMENTATION = r"""
name: subject_alt_names
short_description: subjectAltName entries for host names and addresses
version_added: 0.2.0
author: webinfra maintainers (@webinfra)
description:
  - Turns a list of host names and IP addresses into C(DNS:name) and C(IP:address) entries,
    lower-cased and deduplicated, empty entries dropped.
options:
  _input:
    description: Host names and addresses.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: SANs of a host certificate
  ansible.builtin.debug:
    msg: "{{ [inventory_hostname, '192.0.2.7'] | webinfra.distributed.subject_alt_names }}"
"""

RETURN = r"""
_value:
  description: The subjectAltName entries.
  type: list
  elements: str
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import subject_alt_names


class FilterModule:
    def filters(self):
        return {"subject_alt_names": subject_alt_names}
