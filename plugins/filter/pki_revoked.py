# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter pki_revoked."""

from __future__ import annotations

DOCUMENTATION = r"""
name: pki_revoked
short_description: whether a certificate of the internal CA falls under pki_revoke
version_added: 0.10.0
author: webinfra maintainers (@webinfra)
description:
  - True when the certificate (PEM) of O(host) for O(purpose) was issued before the C(issued_before)
    of an entry of O(entries) that names that host and that purpose, or no purpose (every certificate
    of the host). A certificate issued again after that time does not fall under the entry.
  - Fails naming the entry when one is malformed (C(host) and C(issued_before) as
    C(YYYY-MM-DDTHH:MM:SSZ) required; C(purpose) one of the pki role's purposes, or C(host)).
options:
  _input:
    description: The certificate (PEM text); empty for none (then false).
    type: str
    required: true
  entries:
    description: The entries of C(pki_revoke) - mappings with C(host), C(issued_before) and optionally C(purpose).
    type: list
    elements: dict
    required: true
  host:
    description: The inventory name of the certificate's host.
    type: str
    required: true
  purpose:
    description: The certificate's purpose - C(host) for the host certificate, else one of the pki role's purposes.
    type: str
    default: host
"""

EXAMPLES = r"""
- name: Whether web-02's backup certificate is to be revoked
  ansible.builtin.debug:
    msg: >-
      {{ lookup('ansible.builtin.file', '.pki/hosts/web-02.backup.crt')
         | webinfra.distributed.pki_revoked(pki_revoke, 'web-02', 'backup') }}
"""

RETURN = r"""
_value:
  description: Whether the certificate is to be revoked.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.plugin_utils.pki import RevocationError, revoked


def pki_revoked(certificate, entries, host, purpose="host"):
    try:
        return revoked(certificate or "", entries or [], str(host), str(purpose))
    except RevocationError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"pki_revoked": pki_revoked}
