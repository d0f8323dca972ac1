import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils import option_file

AWKWARD = " a#b;c \"d\" 'e' f\\g `h` "


def test_mysql_values_are_double_quoted_with_backslash_and_quote_escaped():
    assert option_file.mysql_value(AWKWARD) == '" a#b;c \\"d\\" \'e\' f\\\\g `h` "'
    assert option_file.mysql_value("plain") == '"plain"'


def test_go_ini_values_go_between_backticks_verbatim():
    # gopkg.in/ini.v1 reads a value that starts with a backtick up to the line's last backtick.
    assert option_file.go_ini_value(AWKWARD) == "`" + AWKWARD + "`"


@pytest.mark.parametrize("syntax", sorted(option_file.SYNTAXES))
@pytest.mark.parametrize("value", ["two\nlines", "carriage\rreturn", "nul\x00byte"])
def test_line_breaks_and_nul_are_refused_with_the_name(syntax, value):
    with pytest.raises(option_file.OptionValueError, match="the exporter's password: a line break or NUL"):
        option_file.SYNTAXES[syntax](value, "the exporter's password")
