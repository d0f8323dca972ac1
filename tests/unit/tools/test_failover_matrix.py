import subprocess

from failover_matrix import Matrix, double_writable, down_together, phase_lines, phases


def test_double_writable_needs_two_fresh_writable_samples_at_once():
    samples = {
        "db-01": [[0.0, 1], [0.2, 1], [0.4, 0], [0.6, 0]],
        "db-02": [[0.05, 0], [0.25, 0], [0.45, 1], [0.65, 1]],
    }
    assert double_writable(samples) == []
    samples["db-02"][1] = [0.25, 1]  # writable at 0.25 while db-01 still was
    assert double_writable(samples) == [0.3]


def test_a_stale_sample_is_no_answer():
    samples = {"db-01": [[0.0, 1], [2.0, 1]], "db-02": [[0.0, 0], [1.0, 1], [2.0, 1]]}
    # db-01's sample at 0.0 is stale after 0.5 s: from 1.0 only db-02 is known writable.
    assert double_writable(samples) == [2.0]
    # Two servers without an answer at once (a stale sample counts as none after 1.5 s).
    down = {"db-01": [[0.0, None], [0.5, None], [1.0, 1]], "db-02": [[0.0, None], [0.6, None], [1.2, 0]]}
    assert down_together(down) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_a_trials_timeline_joins_the_agents_and_the_writer_endpoint_in_time_order():
    m = Matrix.__new__(Matrix)
    m.dbs, m.balancers = ["db-01", "db-02"], ["lb-01"]
    journals = {
        "db-01": "1000.50 db-01 webinfra-ha-agent[7]: fencing: lease lost\n-- No entries --\n",
        "db-02": "1009.25 db-02 webinfra-ha-agent[9]: took the leader key (lease expired)\n",
        "lb-01": "1010.00 lb-01 haproxy[3]: Server db_writer/db-02 is UP, reason: Layer7 check passed\n",
    }
    asked = []

    def sh(host, command, timeout=30):
        asked.append(command)
        return subprocess.CompletedProcess(command, 0, journals[host], "")

    m.sh = sh
    assert m.timeline(1000.0, 1012.0) == [
        [0.5, "db-01", "fencing: lease lost"],
        [9.25, "db-02", "took the leader key (lease expired)"],
        [10.0, "lb-01", "Server db_writer/db-02 is UP, reason: Layer7 check passed"],
    ]
    assert "--since @998 --until @1013" in asked[0] and "grep -F 'Server db_writer/'" in asked[2]


def test_a_trials_phases_name_the_first_line_of_each_kind_from_the_right_host():
    cell = {
        "leader_before": "db-01",
        "leader_after": "db-02",
        "gap": [0.4, 9.1],
        "timeline": [
            [-1.0, "db-01", "fencing: an older round"],
            [5.5, "db-01", "fencing: could not renew the leader lease in time"],
            [6.0, "db-01", "fencing: again"],
            [8.7, "db-03", "took the leader key (someone else)"],
            [8.8, "db-02", "took the leader key (the lease expired)"],
            [8.8, "db-02", "writable 0.01 s after it took the key"],
            [8.9, "lb-01", "Server db_writer/db-01 is DOWN, reason: Layer7 wrong status"],
            [9.0, "lb-01", "Server db_writer/db-02 is UP, reason: Layer7 check passed"],
        ],
    }
    assert phases(cell) == {
        "gap began": 0.4,
        "fenced": 5.5,
        "took the key": 8.8,
        "writable": 8.8,
        "writer endpoint UP": 9.0,
        "gap ended": 9.1,
    }
    lines = phase_lines({"freeze-host": {"cells": [dict(cell, window_s=8.7)]}})
    assert lines == [
        "freeze-host 1: window 8.7 s; gap began +0.40, fenced +5.50, took the key +8.80, writable +8.80, "
        "writer endpoint UP +9.00, gap ended +9.10"
    ]


def test_etcd_is_healthy_only_when_every_member_answers():
    m = Matrix.__new__(Matrix)
    m.etcd_members, m.addresses, m.etcd_root_password = ["db-01", "db-02", "db-03"], {"db-01": "10.0.0.1"}, "pw"
    answers = []
    m.sh = lambda host, script, timeout=30, stdin=None: subprocess.CompletedProcess(script, 0, answers[-1], "")
    member = '{"endpoint":"https://10.0.0.%d:2379","health":%s}'
    answers.append("[" + ",".join(member % (n, "true") for n in (1, 2, 3)) + "]")
    assert m.etcd_healthy()
    answers.append("[" + ",".join(member % (n, "true" if n != 3 else "false") for n in (1, 2, 3)) + "]")
    assert not m.etcd_healthy()
    answers.append("[" + ",".join(member % (n, "true") for n in (1, 2)) + "]")  # a member missing
    assert not m.etcd_healthy()
    answers.append("context deadline exceeded")
    assert not m.etcd_healthy()
