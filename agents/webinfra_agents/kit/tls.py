# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revocation for the agents' TLS: the internal CA's certificate revocation list (the pki role's
`pki_revoke`), honoured for the peer's certificate on both ends of a connection."""

from __future__ import annotations

import os
import ssl


def honour_crl(ctx, crl_file):
    """Make `ctx` refuse a peer whose certificate the CA revoked: the CRL (PEM) is loaded into its
    trust store and checked for the peer's own certificate (OpenSSL's CRL check of the leaf). An
    expired CRL fails every handshake, as OpenSSL does: site.yml issues it again in time. Without a
    file (no CRL configured), `ctx` is returned as it was."""
    if crl_file:
        ctx.load_verify_locations(cafile=crl_file)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def crl_stamp(crl_file):
    """What tells a changed revocation list on disk (size and modification time); None without one."""
    if not crl_file:
        return None
    try:
        stat = os.stat(crl_file)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)
