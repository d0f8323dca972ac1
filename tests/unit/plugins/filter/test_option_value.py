import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.webinfra.distributed.plugins.filter.option_value import FilterModule

option_value = FilterModule().filters()["option_value"]


def test_both_syntaxes():
    assert option_value('p#w;"x"') == '"p#w;\\"x\\""'
    assert option_value('p#w;"x"', "go-ini") == '`p#w;"x"`'


def test_bad_syntax_and_value_are_named():
    with pytest.raises(AnsibleFilterError, match="syntax must be one of go-ini, mysql, not 'toml'"):
        option_value("x", "toml")
    with pytest.raises(AnsibleFilterError, match="line break"):
        option_value("a\nb", "go-ini")
