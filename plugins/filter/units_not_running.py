# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter reading `systemctl show` output: the units that are not enabled and running."""

from __future__ import annotations

DOCUMENTATION = r"""
name: units_not_running
short_description: Units of a systemctl show output that are not enabled and active
version_added: 0.5.0
author: webinfra maintainers (@webinfra)
description:
  - Reads the output of C(systemctl show --property=Id,ActiveState,UnitFileState UNIT...) and
    returns the units (their names without the C(.service) suffix) that are not both enabled
    and active. A unit systemd does not know is returned too.
  - The roles read every unit's state with one command and start or enable only the units this
    filter returns, instead of calling the systemd module once per unit on every run.
options:
  _input:
    description: The command's standard output.
    type: str
    required: true
  units:
    description: The unit names asked about; every one missing from the output is returned.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Read the state of the exporters' units
  ansible.builtin.command:
    cmd: systemctl show --property=Id,ActiveState,UnitFileState prometheus-node-exporter
  register: __units
  changed_when: false

- name: Start the ones that need it
  ansible.builtin.systemd_service:
    name: "{{ item }}"
    enabled: true
    state: started
  loop: "{{ __units.stdout | webinfra.distributed.units_not_running(['prometheus-node-exporter']) }}"
"""

RETURN = r"""
_value:
  description: Unit names, in the order asked.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.module_utils.host_state import not_ready, parse_show


def units_not_running(output, units):
    if not isinstance(output, str):
        raise AnsibleFilterError(
            f"units_not_running: expects the command's output (a string), got {type(output).__name__}"
        )
    return not_ready(parse_show(output, units), units)


class FilterModule:
    def filters(self):
        return {"units_not_running": units_not_running}
