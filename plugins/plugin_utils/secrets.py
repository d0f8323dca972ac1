# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks on secrets supplied through variables (pure functions, unit-tested)."""

from __future__ import annotations

# Passwords of the collection's lab and Molecule inventories: public, so never acceptable
# outside the lab.
LAB_SECRETS = frozenset(
    f"{env}-{what}-password"
    for env in ("lab", "molecule")
    for what in ("repl", "writer", "reader", "exporter", "stats", "binlog", "monitoring")
)
MIN_LENGTH = 12


def weak_secrets(secrets: dict, min_length: int = MIN_LENGTH) -> list[str]:
    """Names (sorted) of the secrets that are empty, a lab default or shorter than min_length."""
    if not isinstance(secrets, dict):
        raise TypeError(f"weak_secrets expects a mapping of variable names to values, got {type(secrets).__name__}")
    weak = []
    for name, value in secrets.items():
        text = "" if value is None else str(value)
        if text in LAB_SECRETS or len(text) < min_length:
            weak.append(name)
    return sorted(weak)
