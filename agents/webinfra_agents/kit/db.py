# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local database server, as the agents reach it: over its unix socket as root (unix_socket
authentication, no password anywhere), its flavour (MariaDB or MySQL, and the version) read
once per connection so every statement is the one that server speaks."""

from __future__ import annotations

from ansible_collections.webinfra.distributed.plugins.module_utils import mysql_flavor


def connect(socket_path, connect_timeout=3, read_timeout=10, write_timeout=None):
    """A PyMySQL connection (autocommit, rows as dicts) to the server at `socket_path`."""
    import pymysql  # noqa: PLC0415 - only where a server runs (python3-pymysql)
    import pymysql.cursors  # noqa: PLC0415

    return pymysql.connect(
        unix_socket=socket_path,
        user="root",
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
    )


def flavor(cursor):
    """The server's Flavor (mysql_flavor.detect over VERSION() and @@version_comment)."""
    cursor.execute("SELECT VERSION() AS version, @@version_comment AS comment")
    row = cursor.fetchone()
    return mysql_flavor.detect(row["version"], row.get("comment") or "")
