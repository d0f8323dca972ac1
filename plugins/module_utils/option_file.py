# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values for client option files, written so that every character survives the reader.

- MariaDB/MySQL option files (``[client]`` of mariadb, mariadb-binlog, mariadb-backup): an
  unquoted value ends at ``#`` and loses surrounding spaces, so the value is double-quoted with
  ``\\`` and ``"`` escaped (the readers undo ``\\\\`` and ``\\"`` inside quotes).
- Go's gopkg.in/ini.v1 (the mysqld exporter's ``--config.my-cnf``): an unquoted value is cut at
  ``#`` or ``;`` before quotes are stripped, and backslashes are kept. A value that starts with a
  backtick runs to the last backtick of the line, verbatim, so the value goes between backticks.

Neither format can hold a line break, nor a NUL byte: such values are refused.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class OptionValueError(ValueError):
    pass


def _check(value, what):
    if "\n" in value or "\r" in value or "\x00" in value:
        raise OptionValueError("%s: a line break or NUL byte cannot be written to an option file" % what)


def mysql_value(value, what="value"):
    """`value` as a double-quoted MariaDB/MySQL option-file value."""
    value = str(value)
    _check(value, what)
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def go_ini_value(value, what="value"):
    """`value` as a gopkg.in/ini.v1 value between backticks (read verbatim)."""
    value = str(value)
    _check(value, what)
    return "`%s`" % value


SYNTAXES = {"mysql": mysql_value, "go-ini": go_ini_value}
