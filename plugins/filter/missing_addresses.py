# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter selecting the hosts whose private address is not known yet."""

from __future__ import annotations

DOCUMENTATION = r"""
name: missing_addresses
short_description: Hosts of the stack whose private address is not known yet
version_added: 0.5.0
author: webinfra maintainers (@webinfra)
description:
  - Returns, in order and without repeats, the hosts of a list of inventory groups for which
    P(webinfra.distributed.host_address#filter) has no answer yet, that is, which set no
    C(webinfra_private_address) and whose facts were not gathered (for example under C(--limit)).
  - The roles gather facts only from these hosts, and skip that step entirely when none is left.
options:
  _input:
    description: Names of inventory groups; groups the inventory does not have are ignored.
    type: list
    elements: str
    required: true
  groups:
    description: The C(groups) magic variable.
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  addresses:
    description:
      - Host name to address, a role's C(<role>_addresses) parameter. When given, the hosts of the
        groups that are not in it are returned (C(hostvars) is not read).
    type: dict
    version_added: 0.10.0
"""

EXAMPLES = r"""
- name: Hosts of the web and database tiers still without an address
  ansible.builtin.debug:
    msg: "{{ ['webservers', 'db_primary'] | webinfra.distributed.missing_addresses(groups, hostvars) }}"

- name: Hosts of the load balancers' group that haproxy_addresses does not cover
  ansible.builtin.debug:
    msg: "{{ ['loadbalancers'] | webinfra.distributed.missing_addresses(groups, hostvars, haproxy_addresses) }}"
"""

RETURN = r"""
_value:
  description: Host names.
  type: list
  elements: str
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import missing_addresses


class FilterModule:
    def filters(self):
        return {"missing_addresses": missing_addresses}
