# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter in_network."""

from __future__ import annotations

DOCUMENTATION = r"""
name: in_network
short_description: Whether an address lies in a network
version_added: 0.4.0
author: webinfra maintainers (@webinfra)
description:
  - Returns true when the input address is inside the network given in CIDR notation.
  - Returns false when either is not a valid address or network (never raises).
options:
  _input:
    description: The address, for example C(10.0.0.100).
    type: str
    required: true
  network:
    description: The network, for example C(10.0.0.0/24).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse a virtual address outside the balancers' network
  ansible.builtin.assert:
    that: keepalived_vip | webinfra.distributed.in_network('10.0.0.0/24')
"""

RETURN = r"""
_value:
  description: Whether the address is in the network.
  type: bool
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import in_network


class FilterModule:
    def filters(self):
        return {"in_network": in_network}
