"""The submitter's wait for a bench's Dask future, at the instant its task finishes."""

from __future__ import annotations

import pytest

from hil.cluster.dispatch import RemoteBenchRunner, _TaskFailed


class RacingFuture:
    """A future whose wait times out at the instant its task ends (``status`` says how it ended),
    as seen with two submitters on one rig: about 7 benches in 40."""

    def __init__(self, status: str, outcome: object):
        self.status, self.outcome, self.waits = status, outcome, 0

    def result(self, timeout: float | None = None) -> object:
        self.waits += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome  # the task's own exception (a TimeoutError too)
        if self.waits == 1:
            raise TimeoutError(f"timed out after {timeout} s")
        return self.outcome

    def done(self) -> bool:
        return True

    def cancel(self) -> None:
        raise AssertionError("a finished bench is not cancelled")


def test_a_bench_that_finished_as_the_wait_timed_out_is_its_result():
    runner = RemoteBenchRunner(None, "sim-lab-a", fetch_artifacts=False)
    assert runner._wait(RacingFuture("finished", ("result", "place")), "b", "ev") == ("result", "place", False)


def test_a_bench_whose_task_raised_timeout_is_a_task_failure():
    runner = RemoteBenchRunner(None, "sim-lab-a", fetch_artifacts=False)
    with pytest.raises(_TaskFailed, match=r"bench 'b' on rig 'sim-lab-a': TimeoutError: the flasher hung"):
        runner._wait(RacingFuture("error", TimeoutError("the flasher hung")), "b", "ev")
