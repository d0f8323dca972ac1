# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The leader lease this agent believes it holds, and when its last renewal started.

Three threads use it: the main loop (takes, adopts, gives up), the keeper (renews) and the
guard (fences at the deadline). Every read and write goes through this object's lock, so the
guard never sees a lease id with another lease's renewal time.
"""

from __future__ import annotations

import threading

from webinfra_agents.ha.decide import lease_valid


class Lease:
    def __init__(self):
        self._lock = threading.Lock()
        self._id = None
        self._renewed_at = None

    @property
    def id(self):
        with self._lock:
            return self._id

    @property
    def renewed_at(self):
        with self._lock:
            return self._renewed_at

    def snapshot(self):
        """(id, renewed_at), read together."""
        with self._lock:
            return self._id, self._renewed_at

    def hold(self, lease_id, renewed_at):
        """A lease taken or adopted; its renewal (or grant) started at `renewed_at`."""
        with self._lock:
            self._id, self._renewed_at = lease_id, renewed_at

    def renewed(self, lease_id, started):
        """A renewal of `lease_id` that started at `started` succeeded; False when the lease
        was given up or replaced meanwhile (the renewal then counts for nothing)."""
        with self._lock:
            if self._id != lease_id:
                return False
            self._renewed_at = started
            return True

    def clear(self, expected=None):
        """Give the lease up (only `expected`, when given); True when this call gave it up."""
        with self._lock:
            if self._id is None or (expected is not None and self._id != expected):
                return False
            self._id = None
            return True

    def valid(self, now, cfg):
        """Held, and renewed recently enough to stay writable (decide.lease_valid)."""
        lease_id, renewed_at = self.snapshot()
        return lease_id is not None and lease_valid(renewed_at, now, cfg)
