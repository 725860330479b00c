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



def test_cancel_all_waits_for_each_run_and_forces_one_that_reaches_no_check():
    outcomes: dict[str, str] = {}

    def run(name: str, event: threading.Event, done: threading.Event, checks: bool) -> None:
        try:
            with cancel.cancelled_by(event):
                while True:  # a rig that waits: with checks, or spinning in Python without one
                    if checks:
                        cancel.check()
                    sum(range(100))
        except KeyboardInterrupt as exc:
            outcomes[name] = f"{type(exc).__name__} after cancel" if event.is_set() else "too early"
        finally:
            done.set()

    runs = []
    for name, checks in (("checks", True), ("spins", False)):
        event, done = threading.Event(), threading.Event()
        thread = threading.Thread(target=run, args=(name, event, done, checks))
        thread.start()
        runs.append((thread, event, done))
    cancel.cancel_all(runs, grace_s=0.5)
    assert all(done.is_set() for _, _, done in runs)
    assert outcomes == {"checks": "Stopped after cancel", "spins": "Stopped after cancel"}
    for thread, _, _ in runs:
        thread.join()
