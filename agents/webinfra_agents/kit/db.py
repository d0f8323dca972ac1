# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local database server, as the agents reach it: over its unix socket as the process's own
system user (unix_socket authentication, no password anywhere: the HA agent is `webinfra-ha`, the
backup agent `webinfra-backup`, each with a MariaDB account of only what it does; a command an
operator runs as root is root), its flavour (MariaDB or MySQL, and the version) read
once per connection so every statement is the one that server speaks."""

from __future__ import annotations

import os
import pwd

from ansible_collections.webinfra.distributed.plugins.module_utils import mysql_flavor


def os_user():
    """The name of the process's effective user: its MariaDB account through unix_socket."""
    return pwd.getpwuid(os.geteuid()).pw_name


def connect(socket_path, connect_timeout=3, read_timeout=10, write_timeout=None):
    """A PyMySQL connection (autocommit, rows as dicts) to the server at `socket_path`, as the
    account of the process's own system user."""
    import pymysql  # noqa: PLC0415 - only where a server runs (python3-pymysql)
    import pymysql.cursors  # noqa: PLC0415

    return pymysql.connect(
        unix_socket=socket_path,
        user=os_user(),
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
