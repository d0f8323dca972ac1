# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's long-running services share (the HA agent, the backup agent): a
log line to the journal (stderr) and systemd's readiness and watchdog notifications."""

from __future__ import annotations

import os
import socket
import sys


def log(message):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def sd_notify(message):
    """READY=1, WATCHDOG=1, ... to systemd (Type=notify); nothing outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.sendto(message.encode("ascii"), address)
        sock.close()
    except OSError:
        pass
