"""Cooperative cancellation of a run in a worker thread (several rigs run in threads of one process).

Signals reach only the main thread. It sets the rig thread's cancel event; the run checks it where
it waits — holding a bench, entering a phase, waiting for targets to be ready, replaying — and
raises :class:`~hil.lifecycle.signals.Stopped` (a ``KeyboardInterrupt`` naming the signal the
process got) there, so the bench's teardown runs as after Ctrl-C with one rig.
A bench on a lab host's Dask worker is cancelled the same way: the submitter sets a Dask event,
and a watcher thread on the worker sets the cancel event of the thread that runs the bench.
Raising at a chosen place matters: an exception forced into a thread at an arbitrary instruction
can land inside an import and leave the interpreter's import lock held, and every other thread
that imports then waits for ever. So forcing is only :func:`cancel_all`'s fallback, for a thread
that reaches no check in time; no caller raises into a thread itself.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hil.lifecycle.signals import Stopped, received

_local = threading.local()


@contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Within the block, ``event`` is the calling thread's cancel event (pool threads are reused:
    the thread's previous event is back afterwards)."""
    previous = getattr(_local, "event", None)
    _local.event = event
    try:
        yield
    finally:
        _local.event = previous


def check() -> None:
    """Raise Stopped if the calling thread's run was cancelled (no-op otherwise)."""
    event = getattr(_local, "event", None)
    if event is not None and event.is_set():
        raise Stopped(received())


def cancel_all(runs: Sequence[tuple[threading.Thread, threading.Event, threading.Event]], grace_s: float) -> None:
    """Cancel every run — its thread, the thread's cancel event, the event the run sets when it is
    done — and wait until each is done. A run that is not done within ``grace_s`` (it reached no
    check) gets the stop forced into its thread."""
    for _, event, _ in runs:
        event.set()
    deadline = time.monotonic() + grace_s
    for thread, _, done in runs:
        if not done.wait(max(0.0, deadline - time.monotonic())):
            _force(thread)
    for _, _, done in runs:
        done.wait()


def _force(thread: threading.Thread) -> None:
    """Raise Stopped in ``thread`` at its next Python instruction, wherever that is."""
    assert thread.ident is not None  # a started thread (runs are started before they are stopped)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Stopped))
