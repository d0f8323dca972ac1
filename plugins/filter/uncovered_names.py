# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter uncovered_names."""

from __future__ import annotations

DOCUMENTATION = r"""
name: uncovered_names
short_description: Names a certificate does not cover
version_added: 0.2.0
author: webinfra maintainers (@webinfra)
description:
  - Returns the names (host names or IP addresses) that no subjectAltName entry of a
    certificate covers. A wildcard entry covers exactly one left-most label (RFC 6125).
  - An empty result means the certificate is valid for every name.
options:
  _input:
    description: The certificate's subjectAltName, as C(community.crypto.x509_certificate_info) returns it.
    type: list
    elements: str
    required: true
  names:
    description: The names the certificate must cover.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse a certificate that does not cover the site's names
  ansible.builtin.assert:
    that: __cert.subject_alt_name | webinfra.distributed.uncovered_names(['www.example.com']) | length == 0
"""

RETURN = r"""
_value:
  description: The names not covered, in input order.
  type: list
  elements: str
"""

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import uncovered_names


class FilterModule:
    def filters(self):
        return {"uncovered_names": uncovered_names}
