"""python-can's ``slcan`` driver with the device's own timestamps.

python-can's :class:`can.interfaces.slcan.slcanBus` stamps every received frame with the host's
``time.time()`` as it parses the line, so each stamp is late by the adapter's USB batching *and*
by however late the host woke the reader — a wake-up no clock fit can tell from the frame. LAWICEL
devices (CANable/CANtact-class firmware, CAN232/CANUSB) stamp frames themselves when asked: after
``Z1`` each frame line ends in four hex digits, the device's millisecond counter wrapping at
60 000. :class:`TimestampedSlcan` is python-can's driver (same commands, same parser, same
``interface: slcan`` in the rig) that asks for them while the channel is closed and gives each
frame the device's time (seconds, 0–60) as ``Message.timestamp``; :class:`hil.clock.AdapterClock`
maps that onto the run clock. A device that refuses ``Z1`` (BEL) keeps python-can's arrival stamps
(``timestamps`` False), and the clock says so.

It also measures ``V`` (version query) round trips — five while the channel is closed, then one
every :data:`hil.clock.ROUND_TRIP_EVERY_NS` as frames are read, so under the load the frames meet: a frame's trip
from the device to the host is no longer than a round trip taken beside it, so they bound the
transport the clock fit cannot see (:attr:`TimestampedSlcan.round_trip_ns`).
"""

from __future__ import annotations

import time
from queue import SimpleQueue
from typing import Any

from can.interfaces.slcan import slcanBus

from hil.clock import ROUND_TRIP_EVERY_NS, RoundTrips

Z1_PERIOD_S = 60.0  # the device's millisecond counter wraps at 60 000
Z1_RESOLUTION_S = 1e-3
ROUND_TRIPS = 5  # V queries at open
QUERY_TIMEOUT_S = 1.0  # a query unanswered this long is given up (and asked again)


class _Lines:
    """python-can's queue of lines read while waiting for a reply, remembering the last one taken
    (python-can's parser does not hand its line back)."""

    def __init__(self, owner: TimestampedSlcan):
        self._owner = owner
        self._queue: SimpleQueue[str] = SimpleQueue()

    def qsize(self) -> int:
        return self._queue.qsize()

    def put_nowait(self, line: str) -> None:
        self._queue.put_nowait(line)

    def get_nowait(self) -> str:
        self._owner.last_line = self._queue.get_nowait()
        return self._owner.last_line


class TimestampedSlcan(slcanBus):
    """python-can's slcan bus with ``Z1`` device timestamps (see the module)."""

    def __init__(self, channel: Any, **kwargs: Any):
        self.timestamps = False  # the device took Z1: Message.timestamp is its time, else host arrival
        self.last_line = ""
        self._open = False
        self.trips = RoundTrips()
        self._asked: int | None = None  # when the V query in flight was written
        self._next_query = 0  # run-clock ns: ask again once reading frames past this
        super().__init__(channel, **kwargs)
        self._queue = _Lines(self)  # type: ignore[assignment]

    @property
    def round_trip_ns(self) -> int | None:
        """The ``V`` round trip (:meth:`hil.clock.RoundTrips.ns`; None: the device never answered)."""
        return self.trips.ns()

    def open(self) -> None:
        """``Z1`` and the first round trips while the channel is still closed (``Z`` is refused while
        open), then python-can's ``O``/``L``."""
        if not self._open:
            self._write("Z1")
            self.timestamps = self._until_version() == self._OK.decode()
            for _ in range(ROUND_TRIPS):
                if self._until_version() is None:
                    break
        super().open()
        self._open = True

    def close(self) -> None:
        super().close()
        self._open = False

    def _ask_version(self) -> None:
        self._asked = time.monotonic_ns()
        self._write("V")

    def _until_version(self) -> str | None:
        """Send ``V`` and read up to its answer: the line before it (the answer to the command sent
        before, while closed nothing else comes), or None if no answer came."""
        self._ask_version()
        before = None
        deadline = time.monotonic() + QUERY_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            line = self._read(left)
            if line and line.startswith("V"):
                return before or ""
            before = line
        return None

    def _read(self, timeout: float | None) -> str | None:
        line = super()._read(timeout)
        if line:
            self.last_line = line
            if line.startswith("V") and self._asked is not None:
                self.trips.add(time.monotonic_ns() - self._asked)
                self._asked = None
        return line

    def _recv_internal(self, timeout: float | None):
        now = time.monotonic_ns()
        if self._open and self.timestamps and now >= self._next_query:
            self._next_query = now + ROUND_TRIP_EVERY_NS
            if self._asked is None or now - self._asked > QUERY_TIMEOUT_S * 1e9:  # none in flight, or lost
                self._ask_version()
        msg, filtered = super()._recv_internal(timeout)
        if msg is not None and self.timestamps:
            stamp = device_ms(self.last_line, msg)
            if stamp is not None:
                msg.timestamp = stamp / 1000
        return msg, filtered


def device_ms(line: str, msg: Any) -> int | None:
    """The ``Z1`` stamp (ms) at the end of frame ``line`` that python-can parsed into ``msg``, or
    None if the line carries none."""
    body = line.rstrip("\r")
    size = 1 + (8 if msg.is_extended_id else 3) + 1 + (0 if msg.is_remote_frame else 2 * len(msg.data))
    if len(body) != size + 4:
        return None
    try:
        return int(body[size:], 16)
    except ValueError:
        return None
