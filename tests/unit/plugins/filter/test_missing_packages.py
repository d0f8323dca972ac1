import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.missing_packages import missing_packages


def test_missing_in_order():
    assert missing_packages(["haproxy", "socat", "curl"], ["socat", "nginx"]) == ["haproxy", "curl"]
    assert missing_packages(["haproxy"], ["haproxy"]) == []


def test_unknown_installed_means_all():
    assert missing_packages(["haproxy", "socat"], None) == ["haproxy", "socat"]


def test_a_string_is_refused():
    with pytest.raises(AnsibleFilterError):
        missing_packages("haproxy", [])
