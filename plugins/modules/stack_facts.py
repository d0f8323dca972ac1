#!/usr/bin/python
# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: stack_facts
short_description: Compute the stack model - the settings the tiers share - for each host
version_added: 0.6.0
author: webinfra maintainers (@webinfra)
description:
  - An action that runs on the controller. From the C(webinfra_*) inputs, the inventory's groups
    and the hosts' private addresses it computes, once per host, the settings several tiers must
    agree on (groups, addresses, ports, transport to the web servers, the database writer
    endpoint, this host's firewall openings, the application's environment) and sets them as a
    fact. The collection's playbooks pass every role its parameters from that fact.
  - Shared ports take the value the inventory sets for the host that serves them, else the
    owning role's default (C(mysql_replication_port), C(haproxy_stats_port), ...).
  - Input that cannot make a working stack fails with a message naming the variable; private
    addresses must be IPv4 (IPv6 is refused).
  - Use it through the P(webinfra.distributed.stack#role) role, which documents and validates
    every input.
attributes:
  check_mode:
    support: full
    description: Computes on the controller; changes nothing.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  inputs:
    description:
      - The C(webinfra_*) inputs (see the P(webinfra.distributed.stack#role) role); missing ones take
        their defaults.
    type: dict
    default: {}
  fact:
    description: Name of the fact to set.
    type: str
    default: webinfra_stack
  partial:
    description:
      - A host of the stack whose private address is unknown (unreachable, without
        C(webinfra_private_address)) is listed in C(unaddressed) with the address C("") instead of
        refusing the model.
      - For playbooks that only read the model while a host may be down (failover, health, the
        playbooks that import C(playbooks/model.yml)); never to configure hosts from it.
    type: bool
    default: false
    version_added: 0.10.0
  secrets_dir:
    description:
      - Directory on the controller where the passwords the stack generates are kept - etcd's
        V(root) user and each database host's HA agent user (role-based access control). Each is
        created once (32 random letters and digits, mode 0600, directory 0700) and read on later
        runs; write your own into a file to choose it.
      - Needed when the etcd group has hosts.
    type: str
    default: ""
    version_added: 0.10.0
notes:
  - The fact holds the application's database passwords, so the task's result is hidden once it
    succeeded (as with C(no_log)); a refusal keeps its message.
"""

EXAMPLES = r"""
- name: Compute the stack model
  webinfra.distributed.stack_facts:
    inputs:
      webinfra_vip: 10.0.0.100
      webinfra_admin_networks: [192.0.2.0/24]

- name: Open this host's stack ports
  ansible.builtin.include_role:
    name: webinfra.distributed.firewall
  vars:
    firewall_stack_rules: "{{ webinfra_stack.firewall_rules }}"
"""

RETURN = r"""
ansible_facts:
  description: The model, under the name given by O(fact).
  returned: always
  type: dict
  contains:
    webinfra_stack:
      description:
        - C(groups) (the database and monitoring group names), C(hosts) (the members of each
          tier), C(addresses) (host to private address), C(unaddressed) (hosts whose address was
          unknown, with O(partial) only), C(tiers) (this host's tiers),
          C(backend) (C(tls), C(port)), C(vip), C(site_address) (the virtual IP, else the first
          balancer), C(monitoring), C(admin_networks),
          C(monitoring_ui_networks), C(db) (C(groups), C(port), C(agent_port), C(semisync)),
          C(db_writer) (C(enabled), C(address), C(port)), C(db_servers) (the writer endpoint's
          database servers - C(name), C(address), C(port)), C(monitoring_targets) (on monitoring
          hosts, Prometheus' targets by job - C(name), C(address), C(port) - each at the port its own
          host serves), C(etcd) (C(enabled), C(endpoints), C(users) - database host to its HA agent's etcd user C(name),
          C(prefixes) and C(password) - C(root_password), C(secrets_dir)), C(firewall_rules) (C(port), C(from),
          C(comment)), C(acme) (C(enabled), C(issuer), C(challenge)), C(exporters) (C(tls)) and
          C(app) (C(env), C(packages)).
      type: dict
      returned: always
"""
