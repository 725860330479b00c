"""hil.cancel: a rig thread's run is cancelled at its own checks; other threads are not affected."""

from __future__ import annotations

import threading

from hil import cancel


def test_a_cancelled_thread_raises_at_its_check_and_no_other_thread_does():
    event, outcome = threading.Event(), {}

    def rig_run() -> None:
        with cancel.cancelled_by(event):
            cancel.check()  # not cancelled yet
            event.set()
            try:
                cancel.check()
            except KeyboardInterrupt:
                outcome["rig"] = "interrupted"
        cancel.check()  # the block is over: this (pool) thread's next job is not cancelled

    thread = threading.Thread(target=rig_run)
    thread.start()
    thread.join()
    assert outcome == {"rig": "interrupted"}
    cancel.check()  # this thread never installed an event: nothing to cancel

