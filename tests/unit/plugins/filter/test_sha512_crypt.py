import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.sha512_crypt import sha512_crypt


def test_the_reference_implementation_s_test_vector():
    # From "Unix crypt using SHA-256 and SHA-512" (Drepper), the $6$ test with default rounds.
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
    )


def test_a_salt_longer_than_16_characters_is_cut_as_crypt_does():
    assert sha512_crypt("Hello world!", "saltstringsaltstringXX").startswith("$6$saltstringsaltst$")


@pytest.mark.parametrize(
    ("password", "salt"),
    [
        ("molecule-stats-password", "0123456789abcdef"),
        ("a", "x"),
        ("é-unicode and a long password " * 5, "Ab./9"),
    ],
)
def test_the_same_as_openssl_passwd(password, salt):
    try:
        proc = subprocess.run(
            ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError:
        pytest.skip("no openssl here")
    assert sha512_crypt(password, salt) == proc.stdout.strip()


@pytest.mark.parametrize("salt", ["", "bad salt", "$6$"])
def test_a_bad_salt_is_refused(salt):
    with pytest.raises(AnsibleFilterError, match="the salt must be 1-16 characters"):
        sha512_crypt("pw", salt)
