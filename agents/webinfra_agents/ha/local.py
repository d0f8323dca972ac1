# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the HA agent keeps on its own host across restarts and etcd's state loss.

etcd holds the cluster's state; this file (root's, in the agent's state directory) holds what
one server must not forget when etcd forgets it, or when the agent restarts:

- `history`: this server has seen the cluster led (so an empty etcd is a lost state, never a
  fresh cluster: no bootstrap, an election by position instead);
- `last_leader`: the last leader's record as this agent last read it (its position);
- `lag`: this server's last measured lag behind the leader;
- `errant` and `errant_gtid`: the server holds transactions the leader lacks, and the position
  it had when that was found (a later, different position - a rebuild - is judged again);
- `rejoin_refused`: the position at which rolling the errant transactions back was refused (not
  tried again at that position: rebuild.yml re-seeds the server).

Written atomically (a temporary file renamed), only when something changed, at most every
`min_interval` seconds for the leader's position.
"""

from __future__ import annotations

import json
import os
import tempfile

from webinfra_agents.kit.daemon import log

FIELDS = ("history", "last_leader", "lag", "errant", "errant_gtid", "rejoin_refused")


class LocalState:
    def __init__(self, path, clock, min_interval=5.0):
        self.path, self.clock, self.min_interval = path, clock, min_interval
        self.values = dict.fromkeys(FIELDS)
        self.values["history"] = False
        self.values["errant"] = ""
        self.written_at = None
        if path and os.path.exists(path):
            try:
                with open(path) as handle:
                    loaded = json.load(handle)
                self.values.update({k: v for k, v in loaded.items() if k in FIELDS})
            except (OSError, ValueError) as exc:
                log("the state file %s is unreadable, starting without it: %s" % (path, exc))

    def get(self, name):
        return self.values[name]

    def set(self, urgent=True, **values):
        """Record the values; write now when they changed and `urgent` (else at most every
        min_interval seconds: the leader's position changes with every write)."""
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError("LocalState has no field %s" % ", ".join(sorted(unknown)))
        if all(self.values.get(k) == v for k, v in values.items()):
            return False
        self.values.update(values)
        now = self.clock()
        if not urgent and self.written_at is not None and now - self.written_at < self.min_interval:
            return False
        return self.write(now)

    def write(self, now):
        if not self.path:
            return False
        directory = os.path.dirname(self.path) or "."
        try:
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".state.")
            with os.fdopen(fd, "w") as handle:
                json.dump(self.values, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError as exc:
            log("writing the state file %s: %s" % (self.path, exc))
            return False
        self.written_at = now
        return True
