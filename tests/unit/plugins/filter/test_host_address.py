import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.host_address import FilterModule, host_address


def test_explicit_private_address_wins():
    hv = {"webinfra_private_address": "10.0.0.5", "ansible_facts": {"default_ipv4": {"address": "192.0.2.1"}}}
    assert host_address(hv) == "10.0.0.5"


def test_falls_back_to_default_route_address():
    assert host_address({"ansible_facts": {"default_ipv4": {"address": "192.0.2.1"}}}) == "192.0.2.1"


def test_injected_fact_variable_is_accepted():
    assert host_address({"ansible_default_ipv4": {"address": "192.0.2.9"}}) == "192.0.2.9"


def test_missing_address_names_the_host_and_the_fix():
    with pytest.raises(AnsibleFilterError, match="web-09.*webinfra_private_address"):
        host_address({"inventory_hostname": "web-09", "ansible_facts": {}})


def test_registered_under_its_name():
    assert FilterModule().filters()["host_address"] is host_address
