# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks on secrets supplied through variables, and the passwords the controller generates and
keeps for the stack (unit-tested)."""

from __future__ import annotations

import os
import string
import time
from secrets import choice as secret_choice

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


PASSWORD_ALPHABET = string.ascii_letters + string.digits


def stored_password(directory: str, name: str, length: int = 32) -> str:
    """The password kept in `directory`/`name` on the controller; a random one of `length`
    letters and digits is created first when the file is missing (directory 0700, file 0600).
    Safe when several forks ask at once: only one creates the file, every one reads it."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a stored password needs a plain file name, got {name!r}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(secret_choice(PASSWORD_ALPHABET) for _index in range(length)) + "\n")
    for _attempt in range(50):
        with open(path) as handle:
            text = handle.read()
        if text.endswith("\n") and text.strip():
            return text.strip()
        time.sleep(0.05)  # another fork is writing it
    raise ValueError(f"{path} holds no password: remove it to have one generated, or write one in it")
