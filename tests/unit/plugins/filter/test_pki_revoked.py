"""pki_revoke: which of the internal CA's certificates fall under an entry."""

import datetime

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.webinfra.distributed.plugins.filter.pki_revoked import pki_revoked

ISSUED = datetime.datetime(2026, 1, 7, 10, 0, 0, tzinfo=datetime.UTC)


def certificate(issued=ISSUED):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web-02")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(issued + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_issued_before_the_entry_of_its_host_and_purpose_is_revoked():
    pem = certificate()
    entry = {"host": "web-02", "purpose": "backup", "issued_before": "2026-01-07T11:00:00Z"}
    assert pki_revoked(pem, [entry], "web-02", "backup")
    assert not pki_revoked(pem, [entry], "web-02", "mariadb")  # another purpose
    assert not pki_revoked(pem, [entry], "web-01", "backup")  # another host
    # An entry without a purpose: every certificate of the host, its host certificate too.
    every = {"host": "web-02", "issued_before": "2026-01-07T11:00:00Z"}
    assert pki_revoked(pem, [every], "web-02", "etcd") and pki_revoked(pem, [every], "web-02")


def test_a_certificate_issued_again_afterwards_is_not():
    entry = {"host": "web-02", "issued_before": "2026-01-07T11:00:00Z"}
    assert not pki_revoked(certificate(ISSUED + datetime.timedelta(hours=2)), [entry], "web-02", "backup")
    assert not pki_revoked("", [entry], "web-02", "backup")  # none issued yet
    assert not pki_revoked(certificate(), [], "web-02", "backup")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"host": "web-02"}, "pki_revoke[0] must be a mapping with host and issued_before"),
        ("web-02", "pki_revoke[0] must be a mapping"),
        ({"host": "web-02", "issued_before": "yesterday"}, "pki_revoke[0].issued_before must be a UTC time"),
        ({"host": "web-02", "issued_before": "2026-01-07T11:00:00Z", "purpose": "ssh"}, "pki_revoke[0].purpose"),
        ({"host": "web-02", "issued_before": "2999-01-01T00:00:00Z"}, "pki_revoke[0].issued_before is in the future"),
    ],
)
def test_a_malformed_entry_is_named(entry, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pki_revoked(certificate(), [entry], "web-02", "backup")
