"""The run clock: one monotonic nanosecond timeline shared by every process of a run.

``CLOCK_MONOTONIC`` is system-wide on Linux, so the controller, the simbus broker, the injector and
emulated targets all read the same clock without any synchronisation. Adapter timestamps from real
buses (python-can ``Message.timestamp``, seconds on the adapter's own epoch) are mapped onto it by
:class:`AdapterClock`.
"""

from __future__ import annotations

import ctypes
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


def to_seconds(ns: int) -> float:
    return ns / NS_PER_S


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
