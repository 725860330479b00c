"""The python-can interface ``simcan``: join an emulated bus by the path of its broker socket.

    bus = can.Bus(interface="simcan", channel="/run/dir/simbus/chassis.sock", receive_own_messages=True)

Received frames (and the echo of one's own frames) carry their end-of-frame time as python-can
timestamps do: seconds since the Unix epoch, the run clock plus the run's epoch offset (which the
broker's welcome gives, see :mod:`hil.clock`; :func:`hil.clock.run_ns` turns a timestamp back into
run-clock ns; the frames are :class:`SimMessage` objects that also carry the exact ``run_ns``, which
:func:`hil.clock.frame_ns` reads). ``recv`` hands each frame out at its end of frame, as a
controller would: the broker forwards a frame as soon as its slot on the wire is decided, and the
node holds it until its end of frame (sleeping, then spinning the last few µs). Every frame
``send`` writes carries the node's send time, which places it on the wire. ``send_at(msg,
release_ns)`` asks the broker to put a frame on the wire at a run-clock time; ``send_written(msg,
written_ns)`` gives the time an emulated core wrote it, which may be past.

Each node measures its own delivery error (:mod:`hil.harness`): when ``recv`` handed a frame out
minus the earliest it could have, the later of the frame's end of frame and the moment ``recv`` was
entered; it reports the histogram (``bus.harness``) to the broker every 0.25 s while it receives,
and at shutdown. A node with ``hold=False`` (the recorder: it needs only the stamps; an emulated
core, which takes each frame at its end of frame in its own time and adds its own lateness to
``bus.harness``) gets frames as they arrive, before their end of frame, and measures nothing itself.

With ``fault_events=True`` the broker also reports every injected fault: they are kept in
``bus.fault_events`` (and passed to ``on_fault_event`` if given) as
:class:`~hil.simbus.faults.FaultEvent` objects; they are never returned by ``recv``.

Like a controller, ``send`` refuses (:class:`can.CanOperationError`) a frame no bus can carry: a
standard id above 0x7FF, an extended id above 29 bits, a CAN FD remote frame, more data than the
frame kind or its DLC allows, a CAN FD frame on a classic bus. ``bitrate``, ``data_bitrate`` and
``fd`` are optional (the bus has them); given and different from the bus's, ``can.Bus(...)`` raises
:class:`can.CanInitializationError`.

If the broker goes away, the next ``send`` or ``recv`` raises :class:`can.CanOperationError`.
"""

from __future__ import annotations

import json
import select
import threading
import time
from collections import deque
from typing import Any
from collections.abc import Callable

import can
from can import CanOperationError, CanProtocol, Message

from hil.canframe import FD_LENGTHS, message_flags
from hil.clock import adopt_epoch_offset, epoch_offset_ns, fine_timer_slack
from hil.harness import ErrorHistogram
from hil.simbus.faults import FaultEvent
from hil.simbus.wire import fd_dlc
from hil.simbus.protocol import (
    CONTROL, EVENT, EVENT_KINDS, F_BRS, F_ERROR, F_ESI, F_EXTENDED, F_FD, F_OWN, F_REMOTE, FRAME, HEADER,
    HEADER_SIZE, HELLO, HELLO_EVENTS, HELLO_NO_FRAMES, HELLO_OWN, MAX_RECORD, WELCOME_FD, connect)

NS = 1_000_000_000
EVENTS_KEPT = 100_000
JOIN_TIMEOUT_S = 30.0  # the broker's welcome: after it, every frame on the bus reaches this node
SPIN_NS = 30_000  # the last stretch before a frame's end of frame is spun, not slept
REPORT_EVERY_NS = 250_000_000  # how often a receiving node reports its delivery error to the broker

_unpack = HEADER.unpack_from
_monotonic_ns = time.monotonic_ns
_fine_timers = threading.local()

# FRAME flags → Message fields (is_extended_id, is_remote_frame, is_error_frame, is_fd, bitrate_switch,
# error_state_indicator, is_rx), looked up once per received frame instead of seven tests
_FLAG_FIELDS = [(bool(f & F_EXTENDED), bool(f & F_REMOTE), bool(f & F_ERROR), bool(f & F_FD), bool(f & F_BRS),
                 bool(f & F_ESI), not f & F_OWN) for f in range(256)]


def hold_until(t_ns: int) -> None:
    """Return at run-clock ``t_ns``, not before: sleep (with 1 ns timer slack for this thread), then
    spin the last :data:`SPIN_NS`."""
    lead = t_ns - _monotonic_ns()
    if lead > SPIN_NS:
        if not getattr(_fine_timers, "set", False):
            fine_timer_slack()
            _fine_timers.set = True
        time.sleep((lead - SPIN_NS) / NS)
    while _monotonic_ns() < t_ns:
        pass


def pack_frame(msg: Message, release_ns: int = 0) -> bytes:
    """A python-can message as a FRAME record; ``release_ns`` is when it may go on the wire (the
    node's send time, or later for a timed release)."""
    flags = message_flags(msg)
    data = b"" if msg.is_remote_frame else bytes(msg.data)
    if msg.is_fd and len(data) > 8:
        data = data.ljust(FD_LENGTHS[fd_dlc(len(data))], b"\0")  # as a controller pads it
    return HEADER.pack(FRAME, flags, msg.dlc if msg.is_remote_frame else len(data), msg.arbitration_id,
                       release_ns) + data


class SimMessage(Message):
    """A received frame: a python-can message that also keeps its end of frame as exact run-clock
    ns (a float of Unix seconds holds only 2^-22 s)."""

    __slots__ = ("run_ns",)
    run_ns: int


def impossible(msg: Message) -> str | None:
    """Why no CAN controller would send ``msg``, or None."""
    kind = "CAN FD" if msg.is_fd else "classic"
    if msg.arbitration_id > (0x1FFFFFFF if msg.is_extended_id else 0x7FF):
        limit = "an extended id of at most 29 bits" if msg.is_extended_id else "a standard id of at most 0x7FF"
        return f"expected {limit}, got 0x{msg.arbitration_id:X}"
    if msg.is_remote_frame and msg.is_fd:
        return "CAN FD has no remote frames"
    if len(msg.data) > (64 if msg.is_fd else 8):
        return f"expected at most {64 if msg.is_fd else 8} data bytes in a {kind} frame, got {len(msg.data)}"
    if not msg.is_remote_frame and len(msg.data) > msg.dlc:
        return f"expected at most {msg.dlc} data bytes (the frame's DLC), got {len(msg.data)}"
    return None


def _contradictions(bus: dict[str, Any], bus_fd: bool, **asked: Any) -> str | None:
    """Which of the node's ``bitrate``/``data_bitrate``/``fd`` arguments differ from the bus's, or None."""
    have = {"fd": bus_fd, "bitrate": bus.get("bitrate"), "data_bitrate": bus.get("data_bitrate")}
    wrong = [f"{key}={value!r} but the bus has {key}={have[key]!r}" for key, value in asked.items()
             if value is not None and have[key] is not None and value != have[key]]
    return "; ".join(wrong) or None


class SimCanBus(can.BusABC):
    """A node on an emulated CAN bus served by the simbus broker."""

    def __init__(self, channel: str, can_filters=None, receive_own_messages: bool = False,
                 fd: bool | None = None, bitrate: int | None = None, data_bitrate: int | None = None,
                 fault_events: bool = False,
                 on_fault_event: Callable[[FaultEvent], None] | None = None,
                 control_only: bool = False, name: str = "", hold: bool = True, **kwargs: Any):
        self.channel = str(channel)
        self.channel_info = f"simbus {self.channel}"
        self.fault_events: deque[FaultEvent] = deque(maxlen=EVENTS_KEPT)
        self._on_fault_event = on_fault_event
        self._send_lock = threading.Lock()
        self._state = can.BusState.ACTIVE
        self.harness = ErrorHistogram()  # delivery error of the frames recv handed out (kind "delivery")
        # False: frames are handed out as they arrive (a recorder needs only their stamps; an
        # emulated core takes each at its end of frame in its own time); it may change while open
        self.hold = hold
        self._eof_ns = 0  # end of frame of the frame _recv_internal returned last
        self._report_at = _monotonic_ns() + REPORT_EVERY_NS
        try:
            self._sock = connect(self.channel)
        except OSError as exc:
            raise can.CanInitializationError(
                f"cannot reach the simbus broker at {self.channel}: {exc.strerror or exc}; "
                "is the rig up (or `hil simbus serve RIG` running)?") from None
        flags = ((HELLO_OWN if receive_own_messages else 0) | (HELLO_EVENTS if fault_events else 0)
                 | (HELLO_NO_FRAMES if control_only else 0))
        try:
            self._send_record(HEADER.pack(HELLO, flags, 0, 0, 0) + name.encode(), None)
            welcome = self._recv_record(JOIN_TIMEOUT_S)
        except BaseException:
            self._sock.close()
            raise
        if welcome is None or welcome[0] != HELLO:
            self._sock.close()
            raise can.CanInitializationError(f"the simbus broker at {self.channel} did not answer within "
                                             f"{JOIN_TIMEOUT_S:.0f} s")
        self._bus_fd = bool(welcome[1] & WELCOME_FD)  # the broker's word; the ``fd`` argument is not needed
        info = json.loads(welcome[HEADER_SIZE:] or b"{}")
        self._epoch_ns = (adopt_epoch_offset(info["epoch_offset_ns"]) if "epoch_offset_ns" in info
                          else epoch_offset_ns())
        wrong = _contradictions(info, self._bus_fd, fd=fd, bitrate=bitrate, data_bitrate=data_bitrate)
        if wrong:
            self._sock.close()
            raise can.CanInitializationError(f"simbus {self.channel}: {wrong}")
        self._can_protocol = CanProtocol.CAN_FD if self._bus_fd else CanProtocol.CAN_20
        super().__init__(channel=channel, can_filters=can_filters, **kwargs)

    # ---- sending -------------------------------------------------------------------------------

    def send(self, msg: Message, timeout: float | None = None) -> None:
        """Queue ``msg`` for the wire, stamped with the moment ``send`` was called."""
        self._send_frame(msg, _monotonic_ns(), timeout)

    def send_at(self, msg: Message, release_ns: int, timeout: float | None = None) -> None:
        """Queue ``msg`` for the wire at run-clock time ``release_ns`` (now, if that has passed: the
        record carries the later of the two, so a late release goes out from when it was written)."""
        now = _monotonic_ns()
        self._send_frame(msg, release_ns if release_ns > now else now, timeout)

    def send_written(self, msg: Message, written_ns: int, timeout: float | None = None) -> None:
        """Queue ``msg`` as written at run-clock ``written_ns``, also one already past: an emulated
        core's time, which trails the run clock after the host held the core back. The broker
        places the frame as if it had been written then (at the first free slot from then, counted
        ``displaced`` if a slot it could have had was given away) and measures how late it read it
        (its ``send`` error): a frame is stamped where the hardware would have put it, and the
        host's delay stays measured."""
        self._send_frame(msg, written_ns, timeout)

    def _send_frame(self, msg: Message, ready_ns: int, timeout: float | None) -> None:
        if self._state is can.BusState.PASSIVE:
            raise CanOperationError(f"simbus {self.channel}: the bus is in passive (listen-only) state")
        if msg.is_fd and not self._bus_fd:
            raise CanOperationError(f"simbus {self.channel}: a CAN FD frame cannot go on this classic CAN bus")
        wrong = impossible(msg)
        if wrong:
            raise CanOperationError(f"simbus {self.channel}: {wrong}")
        self._send_record(pack_frame(msg, ready_ns), timeout)

    def _send_record(self, record: bytes, timeout: float | None) -> None:
        with self._send_lock:
            try:
                while True:
                    try:
                        self._sock.send(record)
                        return
                    except BlockingIOError:
                        _, ready, _ = select.select([], [self._sock], [], timeout)
                        if not ready:
                            raise can.CanOperationError(
                                f"simbus {self.channel}: transmit queue full, frame not sent within {timeout} s"
                            ) from None
            except OSError as exc:
                raise self._gone(exc) from None

    # ---- receiving -----------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next frame, handed out at its end of frame (see the module docstring); its delivery
        error goes into :attr:`harness`."""
        entered = _monotonic_ns()
        msg = super().recv(timeout)
        if msg is None:
            return None
        if _monotonic_ns() >= self._report_at and self.harness.count:  # before the stamp: the
            self._report(_monotonic_ns())  # report delays this frame too
        if self.hold:
            now = _monotonic_ns()
            eof = self._eof_ns
            self.harness.add(now - (eof if eof > entered else entered))
        return msg

    def _report(self, now: int) -> None:
        """Send the delivery histogram to the broker, never blocking (a full socket: next time)."""
        self._report_at = now + REPORT_EVERY_NS
        record = HEADER.pack(CONTROL, 0, 0, 0, now) + json.dumps(
            {"op": "harness", "delivery": self.harness.to_json()}, separators=(",", ":")).encode()
        if self._send_lock.acquire(blocking=False):
            try:
                self._sock.send(record)
            except OSError:
                pass
            finally:
                self._send_lock.release()

    def _recv_internal(self, timeout: float | None) -> tuple[Message | None, bool]:
        """One record from the socket (so ``fileno()`` stays readable while more wait); a frame is
        held until its end of frame, even past ``timeout``: at most its own wire time, since the
        broker forwards it no earlier than its start."""
        record = self._recv_record(timeout)
        if record is None:
            return None, False
        kind, flags, dlc, can_id, t_ns = _unpack(record)
        if kind == FRAME:
            if self.hold and t_ns > _monotonic_ns():
                hold_until(t_ns)
            self._eof_ns = t_ns
            ext, rtr, err, fd, brs, esi, rx = _FLAG_FIELDS[flags]
            msg = SimMessage(
                timestamp=(t_ns + self._epoch_ns) / NS, arbitration_id=can_id, is_extended_id=ext,
                is_remote_frame=rtr, is_error_frame=err, is_fd=fd, bitrate_switch=brs, error_state_indicator=esi, dlc=dlc,
                data=record[HEADER_SIZE:], is_rx=rx, channel=self.channel, check=False)
            msg.run_ns = t_ns
            return msg, False
        if kind == EVENT:
            event = FaultEvent(t_ns, EVENT_KINDS[flags], can_id, json.loads(record[HEADER.size:]))
            self.fault_events.append(event)
            if self._on_fault_event is not None:
                self._on_fault_event(event)
        return None, False

    def _recv_record(self, timeout: float | None) -> bytes | None:
        try:
            try:
                record = self._sock.recv(MAX_RECORD)
            except BlockingIOError:
                ready, _, _ = select.select([self._sock], [], [], timeout)
                if not ready:
                    return None
                record = self._sock.recv(MAX_RECORD)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise self._gone(exc) from None
        if not record:
            raise self._gone(None)
        return record

    def _gone(self, exc: OSError | None) -> CanOperationError:
        why = f": {exc.strerror or exc}" if exc is not None else ""
        return CanOperationError(f"simbus {self.channel}: the broker closed the connection{why}")

    # ---- control -------------------------------------------------------------------------------

    def control(self, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """One control request (arm / clear / faults / stats) and its reply; frames and events that
        arrive meanwhile are dropped, so use a ``control_only`` connection for this."""
        self._send_record(HEADER.pack(CONTROL, 0, 0, 0, 0) + json.dumps(request).encode(), timeout)
        while True:
            record = self._recv_record(timeout)
            if record is None:
                raise CanOperationError(f"simbus {self.channel}: no reply to {request.get('op')!r} within {timeout} s")
            if record[0] == CONTROL:
                return json.loads(record[HEADER.size:])

    @property
    def state(self) -> can.BusState:
        return self._state

    @state.setter
    def state(self, new_state: can.BusState) -> None:
        """Kept for python-can tools (``can.logger`` sets ACTIVE); a passive node cannot send."""
        self._state = new_state

    def fileno(self) -> int:
        return self._sock.fileno()

    def shutdown(self) -> None:
        if self._is_shutdown:
            return
        if self.harness.count:
            self._report(_monotonic_ns())
        super().shutdown()
        self._sock.close()
