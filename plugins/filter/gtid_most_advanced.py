# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtid_most_advanced: the most advanced of several GTID positions (module_utils.gtid)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import GtidError, most_advanced

DOCUMENTATION = r"""
name: gtid_most_advanced
short_description: The server whose GTID position contains every other one's
version_added: 0.4.0
author: webinfra maintainers (@webinfra)
description:
- Input maps server names to GTID positions (MariaDB C(domain-server-seq) lists or MySQL C(uuid:interval)
  sets); returns the name of the server that has every transaction of the others. Ties go to the first
  name in sorted order.
- Fails when the positions diverged (no server contains all others).
options:
  _input:
    description: Server name to GTID position.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Pick the replica to promote
  ansible.builtin.set_fact:
    candidate: "{{ {'db-02': '0-1-120', 'db-03': '0-1-118'} | webinfra.distributed.gtid_most_advanced }}"
"""

RETURN = r"""
_value:
  description: The server name.
  type: str
"""


def _most_advanced(positions):
    try:
        return most_advanced(dict(positions))
    except GtidError as exc:
        raise AnsibleFilterError("gtid_most_advanced: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"gtid_most_advanced": _most_advanced}
