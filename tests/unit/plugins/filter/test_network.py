import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.plugin_utils.network import (
    in_network,
    invalid_networks,
    subject_alt_names,
    uncovered_names,
)


def test_invalid_networks_reports_only_bad_entries():
    assert invalid_networks(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "10.0.0.1/24"]) == []
    assert invalid_networks(["10.0.0.0/33", "example.com", "", "10.0.0.0/8"]) == ["10.0.0.0/33", "example.com", ""]


def test_invalid_networks_refuses_a_string():
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        invalid_networks("10.0.0.0/8")


def test_subject_alt_names_kinds_and_dedup():
    assert subject_alt_names(["Web-01", "web-01", "10.89.0.4", "", "2001:db8::1", "localhost"]) == [
        "DNS:web-01",
        "IP:10.89.0.4",
        "IP:2001:db8::1",
        "DNS:localhost",
    ]


@pytest.mark.parametrize(
    ("sans", "names", "missing"),
    [
        (["DNS:www.example.com"], ["www.example.com", "WWW.example.com."], []),
        (
            ["DNS:*.example.com"],
            ["www.example.com", "example.com", "a.b.example.com"],
            ["example.com", "a.b.example.com"],
        ),
        (["IP:127.0.0.1", "DNS:localhost"], ["127.0.0.1", "localhost", "10.0.0.1"], ["10.0.0.1"]),
        (["IP Address:2001:db8::1"], ["2001:db8:0::1"], []),
        ([], ["localhost"], ["localhost"]),
        (None, ["localhost"], ["localhost"]),
        (["email:a@example.com", "IP:not-an-ip"], ["a@example.com"], ["a@example.com"]),
    ],
)
def test_uncovered_names(sans, names, missing):
    assert uncovered_names(sans, names) == missing


@pytest.mark.parametrize(
    ("address", "network", "expected"),
    [
        ("10.89.0.100", "10.89.0.0/24", True),
        ("10.89.1.100", "10.89.0.0/24", False),
        ("10.89.0.100", "10.89.0.7/24", True),
        ("not-an-ip", "10.89.0.0/24", False),
        ("10.89.0.100", "nonsense", False),
        ("2001:db8::5", "2001:db8::/64", True),
    ],
)
def test_in_network(address, network, expected):
    assert in_network(address, network) is expected
