# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter quoting a value for a client option file (MariaDB's or Go's ini reader)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: option_value
short_description: A value (a password) quoted for a client option file, every character kept
version_added: 0.10.0
author: webinfra maintainers (@webinfra)
description:
  - Quotes the input for the reader of an option file so that C(#), C(;), quotes, backslashes and
    leading or trailing spaces survive.
  - V(mysql) - MariaDB and MySQL option files (C([client]) of the command-line clients),
    double-quoted with C(\\) and C(") escaped.
  - V(go-ini) - Go's gopkg.in/ini.v1, which the mysqld exporter uses for its C(--config.my-cnf) file,
    between backticks (read verbatim; an unquoted value would be cut at C(#) or C(;)).
  - Fails for a value with a line break or NUL byte, which neither format can hold.
options:
  _input:
    description: The value.
    type: str
    required: true
  syntax:
    description: The reader of the file.
    type: str
    choices: [mysql, go-ini]
    default: mysql
"""

EXAMPLES = r"""
- name: The exporter's option file
  ansible.builtin.copy:
    dest: /etc/prometheus/mysqld-exporter.cnf
    content: |
      [client]
      user=exporter
      password={{ exporter_password | webinfra.distributed.option_value('go-ini') }}
    mode: "0640"
  no_log: true

# 'a#b; "c"' | webinfra.distributed.option_value           ->  "a#b; \"c\""
# 'a#b; "c"' | webinfra.distributed.option_value('go-ini') ->  `a#b; "c"`
"""

RETURN = r"""
_value:
  description: The quoted value, quotes included.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.module_utils import option_file


def option_value(value, syntax="mysql"):
    if syntax not in option_file.SYNTAXES:
        raise AnsibleFilterError(
            "option_value: syntax must be one of %s, not %r" % (", ".join(sorted(option_file.SYNTAXES)), syntax)
        )
    try:
        return option_file.SYNTAXES[syntax](value)
    except option_file.OptionValueError as exc:
        raise AnsibleFilterError("option_value: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"option_value": option_value}
