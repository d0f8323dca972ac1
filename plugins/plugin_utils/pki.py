# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revocation of the internal CA's certificates (the pki role's pki_revoke), on the controller."""

from __future__ import annotations

import datetime

try:
    from cryptography import x509
except ImportError:  # (the controller's Python has it: Ansible depends on it)
    x509 = None

# Every certificate the pki role issues a host: its host certificate, and one per purpose.
HOST = "host"
PURPOSES = ("backup", "etcd-client", "mariadb", "etcd", "haproxy", "nginx", "monitoring", "exporters")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
FUTURE_SLACK = datetime.timedelta(minutes=5)  # the controller's clock against the operator's


class RevocationError(ValueError):
    """A pki_revoke entry that cannot be understood."""


def _issued_before(entry, index):
    if not isinstance(entry, dict) or not entry.get("host") or not entry.get("issued_before"):
        raise RevocationError(
            f"pki_revoke[{index}] must be a mapping with host and issued_before (and optionally purpose), is {entry!r}"
        )
    purpose = entry.get("purpose") or ""
    if purpose and purpose not in (HOST, *PURPOSES):
        raise RevocationError(
            f"pki_revoke[{index}].purpose must be one of {', '.join((HOST, *PURPOSES))} (or unset: every "
            f"certificate of the host), is {purpose!r}"
        )
    try:
        when = datetime.datetime.strptime(str(entry["issued_before"]), TIME_FORMAT)
    except ValueError:
        raise RevocationError(
            f"pki_revoke[{index}].issued_before must be a UTC time as YYYY-MM-DDTHH:MM:SSZ "
            f"(for example 2026-12-07T12:00:00Z), is {entry['issued_before']!r}"
        ) from None
    when = when.replace(tzinfo=datetime.timezone.utc)
    if when > datetime.datetime.now(datetime.timezone.utc) + FUTURE_SLACK:
        # Every certificate issued until then would be revoked and issued again on every run.
        raise RevocationError(
            f"pki_revoke[{index}].issued_before is in the future ({entry['issued_before']}): give the time the key "
            "was found compromised, or now"
        )
    return when


def check(entries):
    """Every entry of pki_revoke well-formed (RevocationError naming the first that is not)."""
    if not isinstance(entries, list):
        raise RevocationError(f"pki_revoke must be a list of mappings, is {entries!r}")
    for index, entry in enumerate(entries):
        _issued_before(entry, index)
    return True


def revoked(certificate, entries, host, purpose=HOST):
    """Whether `host`'s certificate for `purpose` (PEM text; "" when there is none) falls under an
    entry of pki_revoke: the entry names the host, the purpose or none, and the certificate was
    issued (notBefore) before the entry's issued_before. Certificates issued again afterwards do
    not: an entry can stay in the inventory."""
    if not certificate or not entries:
        return False
    check(entries)
    if x509 is None:
        raise RevocationError("pki_revoke needs the cryptography library on the controller")
    cert = x509.load_pem_x509_certificate(certificate.encode() if isinstance(certificate, str) else certificate)
    issued = getattr(cert, "not_valid_before_utc", None)
    if issued is None:  # cryptography < 42
        issued = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    for index, entry in enumerate(entries):
        if str(entry["host"]) != host or (entry.get("purpose") or purpose) != purpose:
            continue
        if issued < _issued_before(entry, index):
            return True
    return False
