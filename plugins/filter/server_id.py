# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter deriving a stable MariaDB/MySQL server_id from a host name."""

from __future__ import annotations

DOCUMENTATION = r"""
name: server_id
short_description: Stable server_id derived from a host name
version_added: 0.1.0
author: webinfra maintainers (@webinfra)
description:
  - Returns an integer between 1 and 4294967295 derived from the SHA-256 of the input, so the same
    host always gets the same server_id without bookkeeping.
  - Collisions are unlikely but possible; the mysql_replication role rejects duplicates in preflight.
options:
  _input:
    description: The host name (usually C(inventory_hostname)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show this host's derived server_id
  ansible.builtin.debug:
    msg: "{{ inventory_hostname | webinfra.distributed.server_id }}"
"""

RETURN = r"""
_value:
  description: The server_id.
  type: int
"""

import hashlib

from ansible.errors import AnsibleFilterError

MAX_SERVER_ID = 4294967295


def server_id(name):
    if not name:
        raise AnsibleFilterError("server_id: needs a non-empty host name")
    digest = hashlib.sha256(str(name).encode()).hexdigest()
    return int(digest[:8], 16) % (MAX_SERVER_ID - 1) + 1


class FilterModule:
    def filters(self):
        return {"server_id": server_id}
