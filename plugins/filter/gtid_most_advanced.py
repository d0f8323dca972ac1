# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters gtid_most_advanced and gtid_contains (documented in the .yml files beside this one)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import GtidError, contains, most_advanced


def _most_advanced(positions):
    try:
        return most_advanced(dict(positions))
    except GtidError as exc:
        raise AnsibleFilterError("gtid_most_advanced: %s" % exc) from exc


def _contains(position, other):
    try:
        return contains(str(position), str(other))
    except GtidError as exc:
        raise AnsibleFilterError("gtid_contains: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"gtid_most_advanced": _most_advanced, "gtid_contains": _contains}
