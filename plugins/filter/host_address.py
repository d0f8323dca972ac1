# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter returning the private address other hosts of the stack use to reach a host."""

from __future__ import annotations

DOCUMENTATION = r"""
name: host_address
short_description: Private address of an inventory host
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Returns the address the other hosts of the stack use to reach a host.
  - C(webinfra_private_address) when the host sets it, else the IPv4 address of its default
    route from gathered facts.
options:
  _input:
    description: The host's entry in C(hostvars), for example C(hostvars['web-01']).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Print web-01's address
  ansible.builtin.debug:
    msg: "{{ hostvars['web-01'] | webinfra.distributed.host_address }}"
"""

RETURN = r"""
_value:
  description: The address.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import known_address


def host_address(hostvars_entry):
    address = known_address(hostvars_entry)
    if address is None:
        name = hostvars_entry.get("inventory_hostname", "a host")
        raise AnsibleFilterError(
            f"host_address: no address for {name}: set webinfra_private_address for it or gather its facts"
        )
    return address


class FilterModule:
    def filters(self):
        return {"host_address": host_address}
