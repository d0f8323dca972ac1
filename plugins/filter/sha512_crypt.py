# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter sha512_crypt: a password's SHA-512 crypt hash ($6$) with a given salt, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: sha512_crypt
short_description: SHA-512 crypt hash (C($6$salt$...)) of a password with a given salt
version_added: 0.11.0
author: webinfra maintainers (@webinfra)
description:
  - Computes the SHA-512 crypt hash of a password (Ulrich Drepper's "Unix crypt using SHA-256
    and SHA-512", 5000 rounds), the same as C(openssl passwd -6 -salt SALT) or glibc's
    C(crypt()) with C($6$SALT).
  - In pure Python on the controller (no module run on the host); neither the C(crypt)
    module (removed in Python 3.13) nor passlib is needed. With a stable salt the hash is
    stable, so a file holding it changes only with the password.
options:
  _input:
    description: The password.
    type: str
    required: true
  salt:
    description:
      - The salt, at most 16 characters of C([./0-9A-Za-z]) (longer ones are cut to 16, as
        crypt does).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The statistics page's user line
  ansible.builtin.debug:
    msg: "user admin password {{ stats_password | webinfra.distributed.sha512_crypt('0123456789abcdef') }}"
"""

RETURN = r"""
_value:
  description: The hash, C($6$SALT$) followed by 86 characters.
  type: str
"""

import hashlib
import re

from ansible.errors import AnsibleFilterError

ROUNDS = 5000
ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# The order in which the 64 digest bytes are encoded, three at a time (the last one alone).
ORDER = [
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
]


def _repeat(digest: bytes, length: int) -> bytes:
    return (digest * (length // len(digest) + 1))[:length]


def _b64(value: int, count: int) -> str:
    out = []
    for _digit in range(count):
        out.append(ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def sha512_crypt(password, salt):
    if not isinstance(password, str) or not isinstance(salt, str):
        raise AnsibleFilterError("sha512_crypt: the password and the salt must be strings")
    salt = salt[:16]
    if not salt or not re.fullmatch(r"[./0-9A-Za-z]+", salt):
        raise AnsibleFilterError(f"sha512_crypt: the salt must be 1-16 characters of [./0-9A-Za-z], got {salt!r}")
    key, slt = password.encode("utf-8"), salt.encode("ascii")

    alternate = hashlib.sha512(key + slt + key).digest()
    ctx = hashlib.sha512(key + slt)
    ctx.update(_repeat(alternate, len(key)))
    length = len(key)
    while length:
        ctx.update(alternate if length & 1 else key)
        length >>= 1
    current = ctx.digest()

    p_bytes = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    s_bytes = _repeat(hashlib.sha512(slt * (16 + current[0])).digest(), len(slt))

    for i in range(ROUNDS):
        ctx = hashlib.sha512()
        ctx.update(p_bytes if i & 1 else current)
        if i % 3:
            ctx.update(s_bytes)
        if i % 7:
            ctx.update(p_bytes)
        ctx.update(current if i & 1 else p_bytes)
        current = ctx.digest()

    encoded = "".join(_b64((current[a] << 16) | (current[b] << 8) | current[c], 4) for a, b, c in ORDER)
    encoded += _b64(current[63], 2)
    return f"$6${salt}${encoded}"


class FilterModule:
    def filters(self):
        return {"sha512_crypt": sha512_crypt}
