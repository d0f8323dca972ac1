import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.units_not_running import FilterModule, units_not_running

SHOW = """Id=prometheus-node-exporter.service
ActiveState=active
UnitFileState=enabled

ActiveState=failed
UnitFileState=enabled
Id=prometheus-nginx-exporter.service

Id=webinfra-ha-agent.service
ActiveState=active
UnitFileState=disabled

Id=nosuch.service
ActiveState=inactive
UnitFileState=
"""


def test_returns_units_not_both_enabled_and_active_in_the_order_asked():
    units = ["nosuch", "prometheus-node-exporter", "webinfra-ha-agent.service", "prometheus-nginx-exporter.service"]
    assert units_not_running(SHOW, units) == ["nosuch", "webinfra-ha-agent", "prometheus-nginx-exporter"]


def test_a_unit_missing_from_the_output_is_returned():
    assert units_not_running("", ["prometheus-node-exporter"]) == ["prometheus-node-exporter"]


def test_every_unit_running_gives_nothing_to_do():
    assert units_not_running(SHOW, ["prometheus-node-exporter"]) == []


def test_rejects_a_non_string_output():
    with pytest.raises(AnsibleFilterError, match="units_not_running: expects the command's output"):
        units_not_running(["Id=x"], ["x"])


def test_registered_under_its_name():
    assert FilterModule().filters()["units_not_running"] is units_not_running
