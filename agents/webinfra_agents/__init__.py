# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""webinfra's host agents: the long-running programs the roles install on the hosts.

Not Ansible module utilities: they run on the hosts under systemd (or from a timer, an SSH
forced command, a playbook's command task), from one artifact the collection builds
(`webinfra-agents.pyz`, see plugins/plugin_utils/agents.py) and installs with one command per
agent:

- `webinfra-ha-agent CONFIG`: leader lease in etcd, self-fencing, automatic failover (ha/);
  `webinfra-ha-agent request pause|resume|switchover|failover`: an operator request to it (root).
- `webinfra-backup COMMAND CONFIG`: backups, their repository, rebuilds and restores (backup/).
- `webinfra-acme COMMAND CONFIG`: the site's ACME certificate on the balancers (acme/).

`kit/` holds what they share. They also import some of the collection's true module utilities
(GTIDs, replication, the MariaDB/MySQL flavour, HAProxy's runtime API); the artifact carries the
ones they import, found by reading the imports, never listed by hand.
"""

from __future__ import annotations

# Command name -> the module whose main(argv) runs it.
ENTRY_POINTS = {
    "webinfra-ha-agent": "webinfra_agents.ha.agent",
    "webinfra-backup": "webinfra_agents.backup.agent",
    "webinfra-acme": "webinfra_agents.acme.agent",
}


def version():
    """The artifact's version: the collection's version and a digest of the agents' sources."""
    try:
        from webinfra_agents._build import VERSION  # noqa: PLC0415 - written into the artifact only
    except ImportError:
        return "0+source"
    return VERSION
