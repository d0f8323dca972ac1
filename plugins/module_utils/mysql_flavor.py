# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server flavour detection and the replication SQL each flavour and version speaks.

MariaDB 10.11 / 11.x: CHANGE MASTER TO ... MASTER_USE_GTID, START/STOP SLAVE 'name',
SHOW SLAVE 'name' STATUS (columns Slave_* / Master_*).
MySQL 8.0.23+ and 8.4: CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION ... FOR CHANNEL,
START/STOP REPLICA, SHOW REPLICA STATUS (columns Replica_* / Source_*).
MySQL before 8.0.23 falls back to CHANGE MASTER TO / SHOW SLAVE STATUS.
MySQL code paths are unit-tested only: MySQL is not installable on the project's test hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MARIADB = "mariadb"
MYSQL = "mysql"


class UnsupportedServer(Exception):
    """The server's flavour or version is outside what the modules support."""


class Flavor(object):
    """A server flavour and version, with the replication SQL it understands."""

    def __init__(self, name, version):
        self.name = name
        self.version = tuple(version)

    def __repr__(self):
        return "Flavor(%r, %r)" % (self.name, self.version)

    def __eq__(self, other):
        return isinstance(other, Flavor) and (self.name, self.version) == (other.name, other.version)

    def __hash__(self):
        return hash((self.name, self.version))

    @property
    def version_string(self):
        return ".".join(str(part) for part in self.version)

    @property
    def is_mariadb(self):
        return self.name == MARIADB

    @property
    def new_mysql_syntax(self):
        """MySQL 8.0.23+: CHANGE REPLICATION SOURCE TO, SOURCE_* options."""
        return self.name == MYSQL and self.version >= (8, 0, 23)

    @property
    def replica_keywords(self):
        """START/STOP REPLICA and SHOW REPLICA STATUS (MySQL 8.0.22+, MariaDB 10.5.1+)."""
        if self.is_mariadb:
            return self.version >= (10, 5, 1)
        return self.version >= (8, 0, 22)

    @property
    def gtid_position_variable(self):
        """The global variable holding every transaction the server has (its GTID position)."""
        return "gtid_current_pos" if self.is_mariadb else "gtid_executed"

    # --- statements -------------------------------------------------------------------------
    def show_status(self, channel=""):
        if self.is_mariadb:
            name = " %s" % quote_string(channel) if channel else ""
            return "SHOW %s%s STATUS" % ("REPLICA" if self.replica_keywords else "SLAVE", name)
        keyword = "REPLICA" if self.replica_keywords else "SLAVE"
        return "SHOW %s STATUS%s" % (keyword, self._for_channel(channel))

    def _for_channel(self, channel):
        return " FOR CHANNEL %s" % quote_string(channel) if channel else ""

    def _thread_statement(self, verb, channel):
        keyword = "REPLICA" if self.replica_keywords else "SLAVE"
        if self.is_mariadb:
            name = " %s" % quote_string(channel) if channel else ""
            return "%s %s%s" % (verb, keyword, name)
        return "%s %s%s" % (verb, keyword, self._for_channel(channel))

    def start(self, channel=""):
        return self._thread_statement("START", channel)

    def stop(self, channel=""):
        return self._thread_statement("STOP", channel)

    def reset(self, channel=""):
        """Forget the replication configuration entirely (RESET ... ALL)."""
        keyword = "REPLICA" if self.replica_keywords else "SLAVE"
        if self.is_mariadb:
            name = " %s" % quote_string(channel) if channel else ""
            return "RESET %s%s ALL" % (keyword, name)
        return "RESET %s ALL%s" % (keyword, self._for_channel(channel))

    def change_source(self, options, channel=""):
        """CHANGE MASTER / CHANGE REPLICATION SOURCE with `options` (canonical names).

        Returns (sql, args): values are passed as query parameters, never interpolated.
        """
        names = SOURCE_OPTION_NAMES[MYSQL if self.new_mysql_syntax else MARIADB]
        parts, args = [], []
        for key in SOURCE_OPTION_ORDER:
            if key not in options or options[key] is None:
                continue
            value = options[key]
            if key == "use_gtid":
                if self.is_mariadb:
                    parts.append("MASTER_USE_GTID = %s" % _gtid_mode(value))
                else:
                    parts.append("%s = %d" % (names[key], 1 if value else 0))
                continue
            if key in BOOLEAN_OPTIONS:
                parts.append("%s = %d" % (names[key], 1 if value else 0))
            elif key in NUMERIC_OPTIONS:
                parts.append("%s = %s" % (names[key], _number(value)))
            else:
                parts.append("%s = %%s" % names[key])
                args.append(str(value))
        if self.new_mysql_syntax:
            sql = "CHANGE REPLICATION SOURCE TO %s%s" % (", ".join(parts), self._for_channel(channel))
        elif self.is_mariadb:
            name = "%s " % quote_string(channel) if channel else ""
            sql = "CHANGE MASTER %sTO %s" % (name, ", ".join(parts))
        else:
            sql = "CHANGE MASTER TO %s%s" % (", ".join(parts), self._for_channel(channel))
        return sql, args


# Canonical option -> (MariaDB / old MySQL name, MySQL 8.0.23+ name)
SOURCE_OPTION_ORDER = [
    "host",
    "port",
    "user",
    "password",
    "use_gtid",
    "log_file",
    "log_pos",
    "connect_retry",
    "heartbeat_period",
    "ssl",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_verify_server_cert",
]
SOURCE_OPTION_NAMES = {
    MARIADB: {
        "host": "MASTER_HOST",
        "port": "MASTER_PORT",
        "user": "MASTER_USER",
        "password": "MASTER_PASSWORD",
        "log_file": "MASTER_LOG_FILE",
        "log_pos": "MASTER_LOG_POS",
        "connect_retry": "MASTER_CONNECT_RETRY",
        "heartbeat_period": "MASTER_HEARTBEAT_PERIOD",
        "ssl": "MASTER_SSL",
        "ssl_ca": "MASTER_SSL_CA",
        "ssl_cert": "MASTER_SSL_CERT",
        "ssl_key": "MASTER_SSL_KEY",
        "ssl_verify_server_cert": "MASTER_SSL_VERIFY_SERVER_CERT",
        "use_gtid": "MASTER_AUTO_POSITION",
    },
    MYSQL: {
        "host": "SOURCE_HOST",
        "port": "SOURCE_PORT",
        "user": "SOURCE_USER",
        "password": "SOURCE_PASSWORD",
        "log_file": "SOURCE_LOG_FILE",
        "log_pos": "SOURCE_LOG_POS",
        "connect_retry": "SOURCE_CONNECT_RETRY",
        "heartbeat_period": "SOURCE_HEARTBEAT_PERIOD",
        "ssl": "SOURCE_SSL",
        "ssl_ca": "SOURCE_SSL_CA",
        "ssl_cert": "SOURCE_SSL_CERT",
        "ssl_key": "SOURCE_SSL_KEY",
        "ssl_verify_server_cert": "SOURCE_SSL_VERIFY_SERVER_CERT",
        "use_gtid": "SOURCE_AUTO_POSITION",
    },
}
BOOLEAN_OPTIONS = frozenset(["ssl", "ssl_verify_server_cert"])
NUMERIC_OPTIONS = frozenset(["port", "log_pos", "connect_retry", "heartbeat_period"])
MARIADB_GTID_MODES = {"slave_pos": "slave_pos", "current_pos": "current_pos", "no": "no"}


def _gtid_mode(value):
    if value is True:
        return "slave_pos"
    if value is False:
        return "no"
    mode = str(value).lower()
    if mode not in MARIADB_GTID_MODES:
        raise ValueError("use_gtid must be slave_pos, current_pos or no, not %r" % (value,))
    return MARIADB_GTID_MODES[mode]


def _number(value):
    number = float(value)
    if number < 0:
        raise ValueError("negative value %r" % (value,))
    return str(int(number)) if number == int(number) else repr(number)


def quote_string(value):
    """Quote a channel / connection name as an SQL string literal."""
    if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", value):
        raise ValueError("channel names may use letters, digits, '_', '.', '-' (at most 64), not %r" % (value,))
    return "'%s'" % value


VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def detect(version_string, version_comment=""):
    """Flavor from SELECT VERSION() (and @@version_comment)."""
    text = "%s %s" % (version_string or "", version_comment or "")
    match = VERSION_RE.match((version_string or "").strip())
    if not match:
        raise UnsupportedServer("cannot parse server version %r" % (version_string,))
    version = tuple(int(part) for part in match.groups())
    # MariaDB 10.x once reported "5.5.5-10.x.y-MariaDB" through the protocol; VERSION() does not.
    if "mariadb" in text.lower():
        legacy = re.match(r"^5\.5\.5-(\d+)\.(\d+)\.(\d+)", version_string or "")
        if legacy:
            version = tuple(int(part) for part in legacy.groups())
        if version < (10, 5, 0):
            raise UnsupportedServer("MariaDB %s is not supported (10.5 or later)" % ".".join(map(str, version)))
        return Flavor(MARIADB, version)
    if version < (8, 0, 0):
        raise UnsupportedServer("MySQL %s is not supported (8.0 or later)" % ".".join(map(str, version)))
    return Flavor(MYSQL, version)
