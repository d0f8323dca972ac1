import pytest

from ansible_collections.webinfra.distributed.plugins.module_utils.mysql_flavor import (
    MARIADB,
    MYSQL,
    Flavor,
    UnsupportedServer,
    detect,
    quote_string,
)

MARIADB_1011 = Flavor(MARIADB, (10, 11, 6))
MARIADB_118 = Flavor(MARIADB, (11, 8, 3))
MYSQL_80_OLD = Flavor(MYSQL, (8, 0, 20))
MYSQL_80 = Flavor(MYSQL, (8, 0, 36))
MYSQL_84 = Flavor(MYSQL, (8, 4, 2))


@pytest.mark.parametrize(
    "version, comment, expected",
    [
        ("10.11.6-MariaDB-0+deb12u1-log", "Debian 12", Flavor(MARIADB, (10, 11, 6))),
        ("11.8.3-MariaDB-0+deb13u1 from Debian", "-- Please help get to 10k stars", Flavor(MARIADB, (11, 8, 3))),
        ("5.5.5-10.11.6-MariaDB", "", Flavor(MARIADB, (10, 11, 6))),
        ("8.0.36", "MySQL Community Server - GPL", Flavor(MYSQL, (8, 0, 36))),
        ("8.4.2-log", "MySQL Community Server - GPL", Flavor(MYSQL, (8, 4, 2))),
        ("8.0.36-28", "Percona Server (GPL)", Flavor(MYSQL, (8, 0, 36))),
        ("10.6.1", "mariadb.org binary distribution", Flavor(MARIADB, (10, 6, 1))),
    ],
)
def test_detect(version, comment, expected):
    assert detect(version, comment) == expected


@pytest.mark.parametrize("version, comment", [("5.7.44", "MySQL"), ("10.3.39-MariaDB", ""), ("garbage", "")])
def test_detect_refuses_unsupported(version, comment):
    with pytest.raises(UnsupportedServer):
        detect(version, comment)


@pytest.mark.parametrize(
    "flavor, channel, show, start, stop, reset",
    [
        (MARIADB_1011, "", "SHOW REPLICA STATUS", "START REPLICA", "STOP REPLICA", "RESET REPLICA ALL"),
        (
            MARIADB_118,
            "east",
            "SHOW REPLICA 'east' STATUS",
            "START REPLICA 'east'",
            "STOP REPLICA 'east'",
            "RESET REPLICA 'east' ALL",
        ),
        (MYSQL_80_OLD, "", "SHOW SLAVE STATUS", "START SLAVE", "STOP SLAVE", "RESET SLAVE ALL"),
        (
            MYSQL_84,
            "east",
            "SHOW REPLICA STATUS FOR CHANNEL 'east'",
            "START REPLICA FOR CHANNEL 'east'",
            "STOP REPLICA FOR CHANNEL 'east'",
            "RESET REPLICA ALL FOR CHANNEL 'east'",
        ),
    ],
)
def test_thread_statements(flavor, channel, show, start, stop, reset):
    assert flavor.show_status(channel) == show
    assert flavor.start(channel) == start
    assert flavor.stop(channel) == stop
    assert flavor.reset(channel) == reset


OPTIONS = {
    "host": "10.0.0.1",
    "port": 3306,
    "user": "repl",
    "password": "s3cr'et",
    "use_gtid": True,
    "connect_retry": 10,
    "heartbeat_period": 2.5,
    "ssl": True,
    "ssl_ca": "/etc/mysql/ca.pem",
    "ssl_verify_server_cert": True,
}


def test_change_master_mariadb_uses_gtid_slave_pos_and_parameters():
    sql, args = MARIADB_1011.change_source(OPTIONS)
    assert sql == (
        "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = 3306, MASTER_USER = %s, MASTER_PASSWORD = %s, "
        "MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 10, MASTER_HEARTBEAT_PERIOD = 2.5, MASTER_SSL = 1, "
        "MASTER_SSL_CA = %s, MASTER_SSL_VERIFY_SERVER_CERT = 1"
    )
    # Values travel as parameters: quotes in a password cannot break the statement.
    assert args == ["10.0.0.1", "repl", "s3cr'et", "/etc/mysql/ca.pem"]


def test_change_master_mariadb_named_connection_and_current_pos():
    sql, _args = MARIADB_118.change_source({"host": "h", "use_gtid": "current_pos"}, "east")
    assert sql == "CHANGE MASTER 'east' TO MASTER_HOST = %s, MASTER_USE_GTID = current_pos"


@pytest.mark.parametrize("flavor", [MYSQL_80, MYSQL_84])
def test_change_replication_source_mysql_8(flavor):
    sql, args = flavor.change_source({"host": "h", "user": "u", "password": "p", "use_gtid": True}, "east")
    assert sql == (
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST = %s, SOURCE_USER = %s, SOURCE_PASSWORD = %s, "
        "SOURCE_AUTO_POSITION = 1 FOR CHANNEL 'east'"
    )
    assert args == ["h", "u", "p"]


def test_old_mysql_uses_change_master_with_auto_position():
    sql, _args = MYSQL_80_OLD.change_source({"host": "h", "use_gtid": True})
    assert sql == "CHANGE MASTER TO MASTER_HOST = %s, MASTER_AUTO_POSITION = 1"


def test_file_position_mode():
    sql, args = MARIADB_1011.change_source({"host": "h", "use_gtid": False, "log_file": "bin.000002", "log_pos": 4})
    assert sql == "CHANGE MASTER TO MASTER_HOST = %s, MASTER_USE_GTID = no, MASTER_LOG_FILE = %s, MASTER_LOG_POS = 4"
    assert args == ["h", "bin.000002"]


@pytest.mark.parametrize("bad", ["x'; DROP TABLE t; --", "", "a" * 65, "sp ace"])
def test_channel_names_are_validated(bad):
    with pytest.raises(ValueError):
        quote_string(bad)


def test_numbers_are_validated():
    with pytest.raises(ValueError):
        MARIADB_1011.change_source({"port": "3306; DROP"})
    with pytest.raises(ValueError):
        MARIADB_1011.change_source({"connect_retry": -1})


def test_the_gtid_position_variable_of_each_flavour():
    assert detect("11.8.3-MariaDB").gtid_position_variable == "gtid_current_pos"
    assert detect("8.4.3").gtid_position_variable == "gtid_executed"
