"""The run clock: one monotonic nanosecond timeline shared by every process of a run.

``CLOCK_MONOTONIC`` is system-wide on Linux, so the controller, the simbus broker, the injector and
emulated targets all read the same clock without any synchronisation. Adapter timestamps from real
buses (python-can ``Message.timestamp``, seconds on the adapter's own epoch) are mapped onto it by
:class:`AdapterClock`.

Absolute time: python-can's convention is that ``Message.timestamp`` is seconds since the Unix epoch,
so ``simcan`` stamps frames as run-clock time plus the run's *epoch offset* (Unix ns − run-clock ns),
fixed once per run: the first process that needs it (the controller, at bus bring-up) measures it
and puts it in ``HIL_EPOCH_OFFSET_NS``, which every child inherits; the simbus broker hands it to
every node in its welcome, so a process hil did not start adopts it too. :func:`run_ns` turns such a
timestamp back into run-clock ns (within 120 ns: a float holds Unix seconds to 2^-22 s);
:func:`frame_ns` gives a received frame's exact run-clock ns (``simcan`` frames carry it beside the
float), and recordings keep the offset as their wall-clock anchor (``epoch_offset_ns``).
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass

NS_PER_S = 1_000_000_000
PR_SET_TIMERSLACK = 29


def now_ns() -> int:
    """Current run-clock time in nanoseconds."""
    return time.monotonic_ns()


def fine_timer_slack() -> None:
    """Let this thread's sleeps end within 1 ns of their deadline instead of Linux's default 50 µs
    slack (for the processes that keep the emulation's timeline); nothing where prctl is missing."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


EPOCH_ENV = "HIL_EPOCH_OFFSET_NS"
_epoch: tuple[str, int] = ("", 0)  # the environment text last parsed, and its value


def epoch_offset_ns() -> int:
    """The run's epoch offset (Unix ns − run-clock ns): the one this process inherited or adopted,
    else measured now and exported to ``HIL_EPOCH_OFFSET_NS`` so every later child shares it."""
    global _epoch
    text = os.environ.get(EPOCH_ENV)
    if text is None:
        text = os.environ[EPOCH_ENV] = str(time.time_ns() - time.monotonic_ns())
    if text != _epoch[0]:
        try:
            _epoch = (text, int(text))
        except ValueError:
            raise ValueError(f"{EPOCH_ENV}: expected an integer number of ns, got {text!r}") from None
    return _epoch[1]


def adopt_epoch_offset(offset_ns: int) -> int:
    """Take ``offset_ns`` (a broker's) as this process's epoch offset unless it already has one;
    returns the one in force, so a process never mixes two."""
    os.environ.setdefault(EPOCH_ENV, str(offset_ns))
    return epoch_offset_ns()


def unix_seconds(t_ns: int) -> float:
    """Run-clock ``t_ns`` as python-can timestamp: seconds since the Unix epoch."""
    return (t_ns + epoch_offset_ns()) / NS_PER_S


def run_ns(timestamp: float, offset_ns: int | None = None) -> int:
    """A python-can timestamp (Unix seconds, as ``simcan`` stamps) as run-clock ns, with this
    process's epoch offset or ``offset_ns`` (a recording's anchor); the float's whole seconds are
    exact, so only its fraction is rounded."""
    whole = int(timestamp)
    return (whole * NS_PER_S + round((timestamp - whole) * NS_PER_S)
            - (epoch_offset_ns() if offset_ns is None else offset_ns))


def frame_ns(msg) -> int:
    """A received python-can message's time on the run clock: exact for ``simcan``'s frames (their
    ``run_ns``), else from its Unix-seconds timestamp."""
    t = getattr(msg, "run_ns", None)
    return run_ns(msg.timestamp) if t is None else t


def from_seconds(s: float) -> int:
    return int(round(s * NS_PER_S))


@dataclass
class AdapterClock:
    """Maps adapter timestamps (seconds, arbitrary epoch) onto the run clock.

    The offset is taken from the first frame (adapter time vs. run-clock time at reception) and then
    lowered whenever a frame arrives with a smaller apparent transport delay, so the mapping converges
    on the minimum-delay estimate. ``method`` is written into recording metadata.
    """

    offset_ns: int | None = None
    method: str = "min-offset: run_clock = adapter_ts + min(observed receive - adapter_ts)"

    def to_run_clock(self, adapter_ts_s: float, received_ns: int) -> int:
        adapter_ns = from_seconds(adapter_ts_s)
        offset = received_ns - adapter_ns
        if self.offset_ns is None or offset < self.offset_ns:
            self.offset_ns = offset
        return adapter_ns + self.offset_ns
