# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup agents_artifact: builds the host agents' artifact on the controller, returns its path."""

from __future__ import annotations

DOCUMENTATION = r"""
name: agents_artifact
short_description: Path of the host agents' artifact (webinfra-agents.pyz), built on the controller
version_added: 0.10.0
author: webinfra maintainers (@webinfra)
description:
  - Builds, once per version, the executable zip that holds the collection's host agents
    (C(webinfra-ha-agent), C(webinfra-backup), C(webinfra-acme)) and the module utilities they
    import, and returns its path on the controller.
  - The file is named C(webinfra-agents-<collection version>+<digest>.pyz), where the digest
    covers everything it holds, and is kept under C($XDG_CACHE_HOME/webinfra/agents)
    (C(~/.cache/webinfra/agents)). The build is reproducible, so copying it to a host changes
    nothing when the agents did not change.
  - The roles install it with the R(common role,ansible_collections.webinfra.distributed.common_role)'s
    C(agents.yml) tasks.
options: {}
"""

EXAMPLES = r"""
- name: The agents' artifact
  ansible.builtin.copy:
    src: "{{ lookup('webinfra.distributed.agents_artifact') }}"
    dest: /usr/local/lib/webinfra/webinfra-agents.pyz
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: The artifact's path on the controller (one element).
  type: list
  elements: path
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.webinfra.distributed.plugins.plugin_utils.agents import AgentsError, build, cache_dir


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError("agents_artifact takes no terms")
        try:
            return [str(build(cache_dir()))]
        except (AgentsError, OSError) as exc:
            raise AnsibleLookupError(f"agents_artifact: {exc}") from exc
