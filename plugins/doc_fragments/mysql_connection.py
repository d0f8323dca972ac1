# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_unix_socket:
    description:
      - Unix socket of the local server. Used when O(login_host) is not set.
      - Default is the first of C(/run/mysqld/mysqld.sock), C(/var/run/mysqld/mysqld.sock),
        C(/var/lib/mysql/mysql.sock), C(/tmp/mysql.sock) that exists.
    type: path
  login_host:
    description: Host to connect to over TCP instead of the unix socket.
    type: str
  login_port:
    description: TCP port with O(login_host).
    type: int
    default: 3306
  login_user:
    description:
      - User to log in as. Default C(root) (through the socket, by unix-socket authentication),
        or the user of O(config_file) when it exists.
    type: str
  login_password:
    description: Password of O(login_user).
    type: str
  config_file:
    description: Option file read for client settings (C([client]) section) when it exists.
    type: path
    default: ~/.my.cnf
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - PyMySQL on the managed host (Debian package C(python3-pymysql)).
notes:
  - Supports MariaDB 10.5 and later (tested on 10.11 and 11.8) and MySQL 8.0/8.4. MySQL code
    paths are covered by unit tests only, since MySQL is not installable on the project's test hosts.
"""
