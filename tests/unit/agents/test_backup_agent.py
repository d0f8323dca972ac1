import pytest

from webinfra_agents.backup import archive as bk
from webinfra_agents.backup import common as agent


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def busy_then(answers):
    """A request answering Busy (409) `answers` times, then its stream's report."""
    calls = []

    def request():
        calls.append(1)
        if len(calls) <= answers:
            raise agent.Busy("10.0.0.1:3309/backup?lsn=0 answered 409: a backup is running on this host")
        return {"rc": 0}

    return request, calls


def test_a_rebuild_waits_while_its_source_streams_another_backup():
    """Two replicas seeded in the same run ask the primary at once: the second waits for the first."""
    fake = FakeTime()
    request, calls = busy_then(5)
    report = agent.when_free(request, "web-01", 60, poll=2, clock=fake.clock, sleep=fake.sleep)
    assert report == {"rc": 0} and len(calls) == 6 and fake.now == 10


def test_a_rebuild_gives_up_after_its_wait_and_says_why():
    fake = FakeTime()
    request, calls = busy_then(1000)
    with pytest.raises(bk.BackupError, match="web-01 streamed another backup for over 20 s"):
        agent.when_free(request, "web-01", 20, poll=2, clock=fake.clock, sleep=fake.sleep)
    assert fake.now == 20 and len(calls) == 11  # t = 0, 2, ..., 20


def test_other_errors_are_not_retried():
    calls = []

    def request():
        calls.append(1)
        raise bk.BackupError("10.0.0.1:3309/backup?lsn=0 answered 403: web-02 may not stream backups")

    with pytest.raises(bk.BackupError, match="403"):
        agent.when_free(request, "web-01", 60, poll=2, clock=lambda: 0, sleep=lambda _s: None)
    assert calls == [1]
