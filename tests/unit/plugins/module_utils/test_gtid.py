import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.gtid import (
    GtidError,
    compare,
    contains,
    most_advanced,
    parse_mariadb,
    union,
)

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "4f22fa47-71ca-11e1-9e33-c80aa9429562"


def test_parse_mariadb_domains():
    assert parse_mariadb("0-1-100, 1-2-5") == {0: (1, 100), 1: (2, 5)}
    assert parse_mariadb("") == {}


@pytest.mark.parametrize("bad", ["0-1", "a-b-c", "0-1-2,0-1-3"])
def test_parse_mariadb_refuses(bad):
    with pytest.raises(GtidError):
        parse_mariadb(bad)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0-1-100", "0-1-100", 0),
        ("0-1-101", "0-1-100", 1),
        ("0-2-90", "0-1-100", -1),  # the sequence orders a domain, not the server id
        ("0-1-100,1-2-5", "0-1-100", 1),
        ("0-1-100,1-2-5", "0-1-101", None),  # diverged: each has something the other lacks
        ("0-1-101", "0-2-101", None),  # the same sequence number from two servers: two histories
        ("0-2-102", "0-1-101", 1),
        ("", "0-1-1", -1),
        (f"{U1}:1-10", f"{U1}:1-5", 1),
        (f"{U1}:1-5,{U2}:1", f"{U1}:1-5", 1),
        (f"{U1}:1-5", f"{U1}:1-3:5", 1),
        (f"{U1}:1-3", f"{U2}:1-3", None),
    ],
)
def test_compare(a, b, expected):
    assert compare(a, b) == expected


def test_contains_is_reflexive():
    assert contains("0-1-5", "0-1-5")


def test_most_advanced_picks_the_superset_and_breaks_ties_by_name():
    assert most_advanced({"db-03": "0-1-118", "db-02": "0-1-120"}) == "db-02"
    assert most_advanced({"db-03": "0-1-120", "db-02": "0-1-120"}) == "db-02"


def test_most_advanced_refuses_diverged_positions():
    with pytest.raises(GtidError, match="diverged"):
        most_advanced({"db-02": "0-1-120,1-3-1", "db-03": "0-1-121"})
    with pytest.raises(GtidError):
        most_advanced({})


def test_union_of_applied_and_received():
    assert union("0-1-10", "0-1-12") == "0-1-12"
    assert union("0-1-12,1-2-3", "0-1-10") == "0-1-12,1-2-3"
    assert union("", "0-2-5") == "0-2-5"
    with pytest.raises(GtidError):
        union("0-1-10", "0-2-10")
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    assert union(f"{uuid}:1-5", f"{uuid}:7") == f"{uuid}:1-5:7"
