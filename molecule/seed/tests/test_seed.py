"""A replica joining a primary that already holds data is seeded, then replicates: with the
backup agents (bk-01 makes this inventory have them) by a physical copy streamed from the
primary - no healthy replica, no backup yet - straight to the replica. Both replicas are
seeded in the same run, from the primary at once: the second copy waits for the first."""

import pytest
from labhosts import groups, host, run_module, sql, wait_for

PRIMARY = groups()["db_primary"][0]
REPLICAS = groups()["db_replicas"]


def test_the_early_binary_logs_are_gone_so_only_seeding_can_bring_the_rows():
    first = sql(PRIMARY, "SHOW BINARY LOGS").splitlines()[0].split("\t")[0]
    assert not first.endswith(".000001"), "binary logs were not purged: the test would not prove seeding"


@pytest.mark.parametrize("replica", REPLICAS)
def test_every_row_arrived_and_checksums_match(replica):
    assert sql(replica, "SELECT COUNT(*) FROM webapp.notes WHERE written_by = 'seed'").strip() == "5000"
    primary_sum = sql(PRIMARY, "CHECKSUM TABLE webapp.notes EXTENDED").split("\t")[1]
    assert wait_for(lambda: sql(replica, "CHECKSUM TABLE webapp.notes EXTENDED").split("\t")[1] == primary_sum, 5)


@pytest.mark.parametrize("replica", REPLICAS)
def test_the_copy_was_physical_and_left_nothing_on_the_primary(replica):
    # install_datadir kept the replica's empty first data directory and gave the copy an incarnation.
    assert host(replica).file("/var/lib/webinfra-backup/incarnation").exists
    assert host(replica).check_output("ls -d /var/lib/mysql.before-rebuild-* | wc -l").strip() == "1"
    assert host(PRIMARY).check_output("ls /var/tmp /var/tmp/webinfra-backup 2>/dev/null | grep -c seed || true") == "0"


@pytest.mark.parametrize("replica", REPLICAS)
def test_replica_runs_from_the_copy_position(replica):
    info = run_module(replica, "webinfra.distributed.replication_info")
    assert info["replica"]["running"], info["replica"]
    assert info["gtid"]["replica_pos"], "gtid_slave_pos was not set from the copy"


@pytest.mark.parametrize("replica", REPLICAS)
def test_new_writes_replicate(replica):
    sql(PRIMARY, "INSERT INTO webapp.notes (body, written_by) VALUES ('after seeding', 'test')")
    count = sql(PRIMARY, "SELECT COUNT(*) FROM webapp.notes").strip()
    assert wait_for(lambda: sql(replica, "SELECT COUNT(*) FROM webapp.notes").strip() == count, timeout=5)
