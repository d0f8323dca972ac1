# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gtid_contains: whether one GTID position includes another (module_utils.gtid)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import GtidError, contains

DOCUMENTATION = r"""
name: gtid_contains
short_description: Whether one GTID position includes every transaction of another
version_added: 0.4.0
author: webinfra maintainers (@webinfra)
description:
- True when the input position has every transaction of O(other) - a replica that has applied a primary's
  position, or a candidate that is not behind another one.
- Positions are MariaDB C(domain-server-seq) lists (one entry per domain) or MySQL C(uuid:interval) GTID
  sets. Fails on a value that is neither.
options:
  _input:
    description: The GTID position that may contain the other.
    type: str
    required: true
  other:
    description: The GTID position to look for.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Wait until the replica has applied the primary's position
  ansible.builtin.assert:
    that: replica_pos | webinfra.distributed.gtid_contains(primary_pos)

# '0-1-120,1-5-7' | webinfra.distributed.gtid_contains('0-1-118')  ->  true
# '0-1-118' | webinfra.distributed.gtid_contains('0-1-120')        ->  false
"""

RETURN = r"""
_value:
  description: Whether the input contains O(other).
  type: bool
"""


def _contains(position, other):
    try:
        return contains(str(position), str(other))
    except GtidError as exc:
        raise AnsibleFilterError("gtid_contains: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"gtid_contains": _contains}
