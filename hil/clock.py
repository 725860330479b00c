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
from collections import deque
from collections.abc import Callable

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


class AdapterClock:
    """Maps adapter timestamps (seconds on the adapter's own clock) onto the run clock, estimating
    the offset *and* the drift between the two continuously.

    Method (``method``): the apparent delay ``received − adapter time`` of a frame is the adapter's
    offset plus a transport delay that is never below some floor (USB batching, a driver's polling).
    Its lower envelope is therefore the offset line: per window of :data:`WINDOW_NS` the minimum is
    kept, and the line under the last :data:`WINDOWS` minima that lies closest to them (an edge of
    their lower convex hull) is the offset and drift; windows where every frame came late lie above
    it and do not pull it up. A frame maps to ``adapter time + line(adapter time) + resolution / 2``
    (the middle of its timestamp tick). Until two windows are complete the running minimum is used.
    Timestamps that wrap (``period_s``, e.g. 60 s for SLCAN's ``Z1``) are unwrapped against the
    arrival time, so even a silence longer than the period is no lost lap.

    What arrival times cannot show is given: the adapter's USB batching (``batch_s``: a driver that
    stamps on arrival, a server whose kernel stamps after the adapter's batch, or a device's own
    stamp, taken before its batch waits for the host, are late or early by up to one batch) and the
    transport floor after the stamp, which the envelope takes for
    offset (mapped times are late by it); ``round_trip_s``, the least round trip to the adapter
    (socketcand's echo, an SLCAN device's ``V`` query), bounds that floor, as no one-way trip is
    longer than a round trip. Each is a delay known only to lie between 0 and its value, so a mapped
    time is moved half of their sum earlier and the bound holds the other half. (The least delay
    the envelope finds is some frame's tick fraction plus batching wait; against any frame's tick
    fraction it is at most that frame's wait, one batch, more and one tick less: centred, half of
    each is the bound.)

    Error bound (:meth:`error_bound_ns`): half the resolution, half of those unseen delays, plus how
    far the median window's least delay lies above the line (the envelope is a line only within
    that), plus the drift over the first two windows (frames mapped before the first fit).
    """

    def __init__(self, resolution_s: float = 1e-6, period_s: float | None = None, batch_s: float = 0.0,
                 round_trip_s: float | Callable[[], float] = 0.0, note: str = ""):
        """``batch_s``, ``round_trip_s``: the delays the fit cannot see (see the class); a round
        trip measured as the run goes is a callable, read at every frame; ``note`` says where they
        come from."""
        self.resolution_ns = max(1, from_seconds(resolution_s))
        self.period_ns = None if period_s is None else from_seconds(period_s)
        self._batch_ns = from_seconds(batch_s)
        self._round_trip = round_trip_s if callable(round_trip_s) else lambda: round_trip_s
        self.unseen_ns = self._batch_ns + from_seconds(self._round_trip())
        self._note = note
        self.frames = 0
        self._origin: int | None = None  # first unwrapped adapter time (ns): the fit's x origin
        self._last_raw: int | None = None
        self._laps = 0
        self._window: tuple[int, int, int] | None = None  # index, x of the minimum, minimum delay
        self._minima: list[tuple[int, int]] = []  # (x, minimum delay) of complete windows
        self._line: tuple[float, float] | None = None  # delay = a + b·x
        self._spread_ns = 0.0
        self._min_delay: int | None = None
        self._last_x = 0

    @property
    def method(self) -> str:
        """How times are mapped and what the bound holds, with the unseen delays as they stand."""
        return (f"lower-envelope fit: run clock = adapter time + offset + drift × adapter time, fitted "
                f"to the least delay per {WINDOW_NS / 1e9:g} s window over the last {WINDOWS} windows; "
                f"resolution {self.resolution_ns / 1e3:g} µs"
                + (f", wraps every {self.period_ns / 1e9:g} s" if self.period_ns else "")
                + (f"; unseen delays 0–{self.unseen_ns / 1e3:g} µs (mapped to their middle)" if self.unseen_ns else "")
                + (f"; {self._note}" if self._note else ""))

    @property
    def drift_ppm(self) -> float:
        """The fitted drift of the run clock against the adapter's (ppm; 0 before a fit)."""
        return 0.0 if self._line is None else self._line[1] * 1e6

    def to_run_clock(self, adapter_ts_s: float, received_ns: int) -> int:
        """Run-clock time of a frame stamped ``adapter_ts_s`` by the adapter and received (handed
        to the host) at ``received_ns``."""
        x = self._unwrap(from_seconds(adapter_ts_s), received_ns)
        self.unseen_ns = self._batch_ns + from_seconds(self._round_trip())
        assert self._origin is not None  # set by the first _unwrap
        delay = received_ns - x - self._origin
        self.frames += 1
        self._last_x = x
        self._min_delay = delay if self._min_delay is None else min(self._min_delay, delay)
        index = x // WINDOW_NS
        if self._window is None or index != self._window[0]:
            if self._window is not None:
                self._close_window()
            self._window = (index, x, delay)
        elif delay < self._window[2]:
            self._window = (index, x, delay)
        return self._origin + x + round(self._delay_at(x)) + self.resolution_ns // 2 - self.unseen_ns // 2

    def error_bound_ns(self) -> int:
        """How far a mapped time may be from the adapter's own time of the frame (see the class)."""
        known = (self.resolution_ns + self.unseen_ns) / 2
        if self._line is None:  # the running minimum: drift is not corrected, at most MAX_DRIFT
            return round(known + MAX_DRIFT * self._last_x)
        # frames mapped before the first fit were off by the drift over the first two windows
        return round(known + self._spread_ns + abs(self._line[1]) * 2 * WINDOW_NS)

    def summary(self) -> dict[str, object]:
        """JSON-ready: method, error bound (ns), fitted drift (ppm), resolution, wrap period, frames."""
        return {"method": self.method, "error_bound_ns": self.error_bound_ns(), "drift_ppm": self.drift_ppm,
                "resolution_ns": self.resolution_ns, "period_ns": self.period_ns, "frames": self.frames,
                "fitted": self._line is not None}

    def _unwrap(self, raw: int, received_ns: int) -> int:
        """Adapter time (ns) since the first frame, with every wrap of the counter added back."""
        if self._origin is None:
            self._origin = raw
            self._last_raw = raw
            return 0
        assert self._last_raw is not None  # set with the origin
        if self.period_ns:
            if self._min_delay is not None:  # the lap that puts the frame nearest its arrival
                expect = received_ns - self._origin - self._delay_at(self._window[1] if self._window else 0)
                self._laps = round((expect - (raw - self._origin)) / self.period_ns)
            elif raw < self._last_raw - self.period_ns // 2:
                self._laps += 1
            self._last_raw = raw
        return raw - self._origin + self._laps * (self.period_ns or 0)

    def _delay_at(self, x: int) -> float:
        """The offset plus the transport floor at adapter time ``x``: the line, never above the
        least delay of this window or the last (each is an upper bound, a line fitted on few windows
        may not be)."""
        if self._line is None:
            return float(self._min_delay if self._min_delay is not None else 0)
        a, b = self._line
        assert self._window is not None  # a line is fitted after windows closed, and one is always open then
        recent = min(self._window[2], self._minima[-1][1])
        return min(a + b * x, recent)

    def _close_window(self) -> None:
        assert self._window is not None  # closed only when open (to_run_clock)
        self._minima.append(self._window[1:])
        del self._minima[:-WINDOWS]
        if len(self._minima) >= 2:
            self._line = _lower_line(self._minima)
            a, b = self._line
            self._spread_ns = sorted(d - (a + b * x) for x, d in self._minima)[len(self._minima) // 2]


class RoundTrips:
    """Round trips to an adapter measured as a run goes, beside its frames and so under the load
    they meet: each second's least over the last :data:`WINDOWS` seconds, and the greatest of those
    (:meth:`ns`), what an :class:`AdapterClock` takes as the bound of the trip no frame shows — its
    fit may rest on any of those seconds, and in each the promptest frame was at worst about as
    late as that second's promptest round trip (a quiet moment's round trip is no bound under load)."""

    def __init__(self) -> None:
        self._least: deque[tuple[int, int]] = deque(maxlen=WINDOWS)  # (second of the run clock, least trip)

    def __len__(self) -> int:
        return len(self._least)

    def add(self, trip_ns: int) -> None:
        second = now_ns() // WINDOW_NS
        if self._least and self._least[-1][0] == second:
            trip_ns = min(trip_ns, self._least.pop()[1])
        self._least.append((second, trip_ns))

    def ns(self) -> int | None:
        """The greatest of the seconds' least round trips (None before the first)."""
        return max((trip for _, trip in self._least), default=None)


WINDOW_NS = 1_000_000_000  # AdapterClock: one lower-envelope point per second of adapter time
ROUND_TRIP_EVERY_NS = 250_000_000  # RoundTrips: a round trip beside the frames this often (four a second)
WINDOWS = 120  # AdapterClock: the envelope fitted over the last two minutes
MAX_DRIFT = 1e-3  # AdapterClock: no oscillator is off by more than 1000 ppm


def _lower_line(points: list[tuple[int, int]]) -> tuple[float, float]:
    """The line ``d = a + b·x`` under every point (x, d), x ascending, that lies closest to them in
    sum: the edge of their lower convex hull above their mean x. Points above it — windows whose
    frames all came late, ticks whose fraction no frame sampled low — do not pull it up."""
    hull: list[tuple[int, int]] = []
    for p in points:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) <= 0:
            hull.pop()
        hull.append(p)
    mean = sum(x for x, _ in points) / len(points)
    (x0, d0), (x1, d1) = next(((p, q) for p, q in zip(hull, hull[1:]) if q[0] >= mean), hull[-2:])
    b = max(-MAX_DRIFT, min(MAX_DRIFT, (d1 - d0) / (x1 - x0))) if x1 != x0 else 0.0
    return d0 - b * x0, b


def _cross(o: tuple[int, int], p: tuple[int, int], q: tuple[int, int]) -> int:
    return (p[0] - o[0]) * (q[1] - o[1]) - (p[1] - o[1]) * (q[0] - o[0])
