"""The runtime emulated firmware runs on: what a stub's ``setup(mcu)`` gets as ``mcu``.

Like a bare-metal main loop with interrupts: a tick loop on absolute deadlines (``tick_hz``,
1 kHz by default; late ticks are counted as overruns, never made up in a burst), periodic tasks
scheduled on the same timeline, CAN receive handlers that run as frames arrive (the "ISR"), and a
console for printf-style lines. Handlers and ticks never run at the same time (one lock, one core).

An optional processing delay (``config["delay"]``, a duration such as ``"5ms"``) holds every
received frame until its end-of-frame time + delay before its handler runs, so a bench can
calibrate its latency measurement against a known, exact extra latency.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import can

from hil.clock import NS_PER_S, frame_ns, now_ns
from hil.spec.common import parse_duration_ns

FrameHandler = Callable[[can.Message], None]


@dataclass(order=True)
class _Periodic:
    due_ns: int
    period_ns: int = field(compare=False)
    fn: Callable[[], None] = field(compare=False)


class Mcu:
    """The firmware's view of its microcontroller: time, CAN, console, DBC, config."""

    buses: dict[str, can.BusABC]  # every CAN bus by name, set by the MCU process that loads the image

    def __init__(self, name: str, bus: can.BusABC | None, printf: Callable[[str], None],
                 config: dict[str, Any], dbc: Any = None, tick_hz: int = 1000):
        self.name = name
        self.bus = bus
        self.config = config
        self.dbc = dbc
        self.tick_ns = NS_PER_S // tick_hz
        self.delay_ns = parse_duration_ns(config.get("delay", 0))
        self.lock = threading.RLock()
        self.overruns = 0
        self._printf = printf
        self._handlers: list[tuple[frozenset[int] | None, FrameHandler]] = []
        self._ticks: list[Callable[[int], None]] = []
        self._periodic: list[_Periodic] = []
        self._delayed: queue.Queue = queue.Queue()
        self.fault: Exception | None = None

    # -- what firmware calls -------------------------------------------------------------------

    @staticmethod
    def now_ns() -> int:
        return now_ns()

    @staticmethod
    def frame_ns(msg: can.Message) -> int:
        """A received frame's end of frame on the run clock (its timestamp is Unix seconds)."""
        return frame_ns(msg)

    @staticmethod
    def seconds(duration: str | float) -> float:
        """A config duration (``"30ms"``, ``0.03``) in seconds."""
        return parse_duration_ns(duration) / NS_PER_S

    def printf(self, fmt: str, *args: Any) -> None:
        """One console line, ``fmt % args`` (C printf style)."""
        self._printf(fmt % args if args else fmt)

    def on_frame(self, handler: FrameHandler, ids: Iterable[int] | None = None) -> None:
        """Call ``handler(msg)`` for every received frame whose id is in ``ids`` (all if None)."""
        self._handlers.append((None if ids is None else frozenset(ids), handler))

    def on_message(self, name: str, handler: Callable[[dict[str, Any], can.Message], None]) -> None:
        """Call ``handler(signals, msg)`` for the DBC message ``name`` (decoded, choices as numbers)."""
        message = self.dbc.get_message_by_name(name)
        self.on_frame(lambda msg: handler(message.decode(bytes(msg.data), decode_choices=False), msg),
                      [message.frame_id])

    def on_tick(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(deadline_ns)`` every tick."""
        self._ticks.append(fn)

    def every(self, period: str | float, fn: Callable[[], None]) -> None:
        """Call ``fn()`` every ``period`` (a duration), on tick boundaries."""
        period_ns = max(parse_duration_ns(period), self.tick_ns)
        self._periodic.append(_Periodic(0, period_ns, fn))

    def send(self, msg: can.Message) -> None:
        if self.bus is None:
            raise RuntimeError(f"MCU {self.name!r} has no CAN bus attached")
        self.bus.send(msg)

    def send_message(self, name: str, signals: dict[str, Any]) -> None:
        """Encode the DBC message ``name`` from ``signals`` and send it."""
        message = self.dbc.get_message_by_name(name)
        self.send(can.Message(arbitration_id=message.frame_id, is_extended_id=message.is_extended_frame,
                              data=message.encode(signals), is_fd=message.is_fd))

    # -- what the MCU process calls -----------------------------------------------------------

    def receive(self, msg: can.Message) -> None:
        """A frame arrived (called on the CAN receive thread); the echo of one's own is not one."""
        if msg.is_error_frame or msg.is_remote_frame or not msg.is_rx:
            return
        handlers = [h for ids, h in self._handlers if ids is None or msg.arbitration_id in ids]
        if not handlers:
            return
        if self.delay_ns:
            self._delayed.put((frame_ns(msg) + self.delay_ns, msg, handlers))
            return
        self._dispatch(msg, handlers)

    def run(self, stop: threading.Event) -> None:
        """The main loop: ticks and periodic tasks on absolute deadlines until ``stop`` is set.

        A CAN handler that raised stops the loop too; its exception is raised here.
        """
        worker = threading.Thread(target=self._delay_worker, args=(stop,), daemon=True)
        if self.delay_ns:
            worker.start()
        start = now_ns()
        for p in self._periodic:
            p.due_ns = start
        heapq.heapify(self._periodic)
        deadline = start
        while not stop.is_set() and self.fault is None:
            with self.lock:
                for fn in self._ticks:
                    fn(deadline)
                while self._periodic and self._periodic[0].due_ns <= deadline:
                    p = heapq.heappop(self._periodic)
                    p.fn()
                    p.due_ns += p.period_ns
                    heapq.heappush(self._periodic, p)
            deadline += self.tick_ns
            late = now_ns() - deadline
            if late >= self.tick_ns:  # skip the ticks we missed; a real MCU would too
                missed = late // self.tick_ns
                self.overruns += missed
                deadline += missed * self.tick_ns
            _sleep_until(deadline)
        if worker.is_alive():
            worker.join()
        if self.fault is not None:
            raise self.fault

    def _delay_worker(self, stop: threading.Event) -> None:
        while not stop.is_set() and self.fault is None:
            try:
                due, msg, handlers = self._delayed.get(timeout=0.1)
            except queue.Empty:
                continue
            _sleep_until(due)
            self._dispatch(msg, handlers)

    def _dispatch(self, msg: can.Message, handlers: list[FrameHandler]) -> None:
        with self.lock:
            try:
                for handler in handlers:
                    handler(msg)
            except Exception as exc:  # a fault in an "ISR" halts the firmware, as on silicon
                self.fault = exc


def _sleep_until(deadline_ns: int) -> None:
    left = deadline_ns - now_ns()
    if left > 0:
        time.sleep(left / NS_PER_S)
