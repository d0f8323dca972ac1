from failover_matrix import double_writable, down_together


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
