import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.address_map import FilterModule as Maps
from ansible_collections.webinfra.distributed.plugins.filter.host_address import FilterModule, host_address
from ansible_collections.webinfra.distributed.plugins.filter.missing_addresses import FilterModule as MissingFilters
from ansible_collections.webinfra.distributed.plugins.filter.missing_addresses import missing_addresses


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


GROUPS = {"webservers": ["web-01", "web-02"], "db_primary": ["web-01"], "loadbalancers": ["lb-01"]}


def test_missing_addresses_lists_only_hosts_without_one_in_order_without_repeats():
    hostvars = {
        "web-01": {"ansible_facts": {}},
        "web-02": {"webinfra_private_address": "10.0.0.2"},
        "lb-01": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.9"}}},
    }
    assert missing_addresses(["db_primary", "webservers", "loadbalancers"], GROUPS, hostvars) == ["web-01"]


def test_missing_addresses_is_empty_when_every_address_is_known():
    hostvars = {h: {"ansible_default_ipv4": {"address": "10.0.0.1"}} for h in ("web-01", "web-02", "lb-01")}
    assert missing_addresses(["webservers", "loadbalancers"], GROUPS, hostvars) == []


def test_missing_addresses_accepts_one_group_name_and_ignores_unknown_groups():
    hostvars = {"web-01": {}, "web-02": {}}
    assert missing_addresses("webservers", GROUPS, hostvars) == ["web-01", "web-02"]
    assert missing_addresses(["monitoring"], GROUPS, hostvars) == []


def test_missing_addresses_rejects_a_non_list():
    with pytest.raises(AnsibleFilterError, match="missing_addresses: expected a list"):
        missing_addresses(5, GROUPS, {})


def test_missing_addresses_registered_under_its_name():
    assert MissingFilters().filters()["missing_addresses"] is missing_addresses


def test_address_map_keeps_known_addresses_in_order():
    hostvars = {
        "web-01": {"webinfra_private_address": "10.0.0.5"},
        "web-02": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.6"}}},
        "db-01": {"ansible_facts": {}},
    }
    address_map = Maps().filters()["address_map"]
    result = address_map(["web-02", "web-01", "db-01", "web-01", "gone"], hostvars)
    assert result == {"web-02": "10.0.0.6", "web-01": "10.0.0.5"}
    assert list(result) == ["web-02", "web-01"]
    assert address_map("web-01", hostvars) == {"web-01": "10.0.0.5"}


def test_missing_addresses_with_a_role_map_names_the_hosts_it_lacks():
    # A role's <role>_addresses decides, whatever hostvars knows (the model's map is final).
    hostvars = {h: {"webinfra_private_address": "10.0.0.9"} for h in ("web-01", "web-02", "lb-01")}
    assert missing_addresses(["webservers", "loadbalancers"], GROUPS, hostvars, {"web-02": "10.0.0.5"}) == [
        "web-01",
        "lb-01",
    ]
    assert missing_addresses("webservers", GROUPS, {}, {"web-01": "a", "web-02": "b"}) == []
