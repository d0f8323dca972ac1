# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter invalid_networks."""

from __future__ import annotations

DOCUMENTATION = r"""
name: invalid_networks
short_description: Entries of a list that are not an address or a CIDR network
version_added: 0.2.0
author: webinfra maintainers (@webinfra)
description:
  - Returns the entries of the input list that are neither an IPv4/IPv6 address nor a network in CIDR notation.
  - An empty result means every entry is valid.
options:
  _input:
    description: The networks, for example C(["10.0.0.0/8", "192.0.2.7"]).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse malformed admin networks
  ansible.builtin.assert:
    that: webinfra_admin_networks | webinfra.distributed.invalid_networks | length == 0
"""

RETURN = r"""
_value:
  description: The invalid entries, in input order.
  type: list
  elements: str
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import invalid_networks


class FilterModule:
    def filters(self):
        return {"invalid_networks": invalid_networks}
