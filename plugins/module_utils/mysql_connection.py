# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connecting to MariaDB/MySQL with PyMySQL: shared options, one error type, flavour detection."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.webinfra.distributed.plugins.module_utils import mysql_flavor

try:
    import pymysql
    import pymysql.cursors

    HAS_PYMYSQL = True
    PYMYSQL_IMPORT_ERROR = None
except ImportError:
    HAS_PYMYSQL = False
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()

DEFAULT_SOCKETS = (
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/var/lib/mysql/mysql.sock",
    "/tmp/mysql.sock",  # noqa: S108 - where some builds put it; only looked up
)


class ConnectionFailure(Exception):
    """The server could not be reached or refused the login; the message names where."""


def connection_argument_spec():
    return dict(
        login_unix_socket=dict(type="path"),
        login_host=dict(type="str"),
        login_port=dict(type="int", default=3306),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        config_file=dict(type="path", default="~/.my.cnf"),
        connect_timeout=dict(type="int", default=10),
    )


def describe_target(params):
    if params.get("login_host"):
        return "%s:%s" % (params["login_host"], params.get("login_port") or 3306)
    return "socket %s" % (params.get("login_unix_socket") or _default_socket() or "(none found)")


def _default_socket():
    for path in DEFAULT_SOCKETS:
        if os.path.exists(path):
            return path
    return None


def connect(params):
    """A PyMySQL connection (autocommit, dict rows) from the module's connection options."""
    kwargs = dict(
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
        connect_timeout=params.get("connect_timeout") or 10,
        charset="utf8mb4",
    )
    config_file = os.path.expanduser(params.get("config_file") or "")
    if config_file and os.path.exists(config_file):
        kwargs["read_default_file"] = config_file
    if params.get("login_host"):
        kwargs["host"] = params["login_host"]
        kwargs["port"] = params.get("login_port") or 3306
    else:
        socket_path = params.get("login_unix_socket") or _default_socket()
        if not socket_path:
            raise ConnectionFailure(
                "no MySQL/MariaDB socket found (looked at %s): is the server installed and "
                "running? Set login_unix_socket or login_host" % ", ".join(DEFAULT_SOCKETS)
            )
        kwargs["unix_socket"] = socket_path
    if params.get("login_user"):
        kwargs["user"] = params["login_user"]
    elif "read_default_file" not in kwargs:
        kwargs["user"] = "root"
    if params.get("login_password") is not None:
        kwargs["password"] = params["login_password"]
    try:
        return pymysql.connect(**kwargs)
    except (pymysql.MySQLError, OSError) as exc:
        raise ConnectionFailure("cannot connect to %s: %s" % (describe_target(params), exc)) from exc


def server_flavor(cursor):
    cursor.execute("SELECT VERSION() AS version, @@version_comment AS comment")
    row = cursor.fetchone()
    return mysql_flavor.detect(row["version"], row.get("comment") or "")


def open_session(module):
    """(cursor, flavor) for a module's connection options, or fail_json saying what to do."""
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib("PyMySQL (Debian: python3-pymysql)"), exception=PYMYSQL_IMPORT_ERROR)
    try:
        cursor = connect(module.params).cursor()
        return cursor, server_flavor(cursor)
    except (ConnectionFailure, mysql_flavor.UnsupportedServer) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except  # PyMySQL errors carry the server's text
        module.fail_json(msg="cannot use %s: %s" % (describe_target(module.params), exc))
    return None, None  # not reached: fail_json exits
