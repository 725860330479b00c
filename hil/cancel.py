"""Cooperative cancellation of a run in a worker thread (several rigs run in threads of one process).

Signals reach only the main thread. It sets the rig thread's cancel event; the run checks it where
it waits — holding a bench, entering a phase, waiting for targets to be ready, replaying — and
raises ``KeyboardInterrupt`` there, so the bench's teardown runs as after Ctrl-C with one rig.
Raising at a chosen place matters: an exception forced into a thread at an arbitrary instruction
can land inside an import and leave the interpreter's import lock held, and every other thread
that imports then waits for ever.
"""

from __future__ import annotations

import threading

_local = threading.local()


def install(event: threading.Event) -> None:
    """Make ``event`` the calling thread's cancel event."""
    _local.event = event


def check() -> None:
    """Raise KeyboardInterrupt if the calling thread's run was cancelled (no-op otherwise)."""
    event = getattr(_local, "event", None)
    if event is not None and event.is_set():
        raise KeyboardInterrupt("cancelled")
