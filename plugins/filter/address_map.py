# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter mapping inventory hosts to the private addresses the other hosts reach them at."""

from __future__ import annotations

DOCUMENTATION = r"""
name: address_map
short_description: Private address of each of a list of inventory hosts
version_added: 0.10.0
author: webinfra maintainers (@webinfra)
description:
  - Returns a mapping of host name to the address the other hosts of the stack use to reach it,
    as P(webinfra.distributed.host_address#filter) finds it, for the hosts whose address is known.
  - A host without C(webinfra_private_address) whose facts were not gathered is left out.
  - The default of every role's C(<role>_addresses) parameter when a role is used on its own;
    the collection's playbooks pass the stack model's validated C(webinfra_stack.addresses).
options:
  _input:
    description: Host names, for example C(groups['all']).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Print the address of every host
  ansible.builtin.debug:
    msg: "{{ groups['all'] | webinfra.distributed.address_map(hostvars) }}"
"""

RETURN = r"""
_value:
  description: Host name to address.
  type: dict
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import address_map


class FilterModule:
    def filters(self):
        return {"address_map": address_map}
