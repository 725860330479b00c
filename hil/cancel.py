"""Cooperative cancellation of a run in a worker thread (several rigs run in threads of one process).

Signals reach only the main thread. It sets the rig thread's cancel event; the run checks it where
it waits — holding a bench, entering a phase, waiting for targets to be ready, replaying — and
raises :class:`~hil.lifecycle.signals.Stopped` (a ``KeyboardInterrupt`` naming the signal the
process got) there, so the bench's teardown runs as after Ctrl-C with one rig.
A bench on a lab host's Dask worker is cancelled the same way: the submitter sets a Dask event,
and a watcher thread on the worker sets the cancel event of the thread that runs the bench.
Raising at a chosen place matters: an exception forced into a thread at an arbitrary instruction
can land inside an import and leave the interpreter's import lock held, and every other thread
that imports then waits for ever. So :func:`force` is only the fallback, for a thread that
reaches no check in time.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
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


def force(thread: threading.Thread) -> None:
    """Raise Stopped in ``thread`` at its next Python instruction, wherever that is."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Stopped))
