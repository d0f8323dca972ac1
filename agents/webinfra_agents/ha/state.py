# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the HA agent knows of itself between rounds, as one typed record (its /status `state`)."""

from __future__ import annotations

import dataclasses
from enum import StrEnum


class Role(StrEnum):
    """The agent's role as its last round left it."""

    STARTING = "starting"  # no round yet
    UNKNOWN = "unknown"  # etcd did not answer: the cluster's leader is unknown
    NEW = "new"  # a server that never replicated nor led (waits for the bootstrap or its seeding)
    REPLICA = "replica"
    CANDIDATE = "candidate"  # no leader: competing for the lease
    PRIMARY = "primary"


@dataclasses.dataclass
class AgentState:
    """The agent's own state; changed only through `update` (under the agent's lock)."""

    role: Role = Role.STARTING
    leader: str | None = None
    # The local server as the last round observed it (database.Database.observe).
    db: dict = dataclasses.field(default_factory=lambda: {"ok": False})
    # Transactions this server has and the leader lacks (empty: none).
    errant: str = ""
    paused: bool = False
    # The pause in force ({at, by, reason, until}), None when not paused.
    pause: dict | None = None
    etcd_ok: bool | None = None
    etcd_error: str = ""
    lag: float | None = None
    # Why this server may not take over (empty: it may).
    blocked: str = ""
    # The last round's outcome (decide.Outcome).
    last_step: str = ""
    # The other members that replicate, answer and are not errant, as the last round saw them
    # (the ones a switchover could go to).
    replicas_healthy: list = dataclasses.field(default_factory=list)

    def update(self, **values):
        """Set the named fields; a name that is no field is a programming error."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise TypeError("AgentState has no field %s" % ", ".join(unknown))
        for name, value in values.items():
            setattr(self, name, Role(value) if name == "role" else value)

    def as_dict(self):
        """A copy as plain values (JSON for /status)."""
        return dataclasses.asdict(self)
