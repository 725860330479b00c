"""One emulated CAN bus inside the broker: its clients, their transmit queues and the wire.

Each client connection is a node with a FIFO transmit queue (so a sender's frames stay in order).
The wire is simulated on the run clock: when the bus is free, the heads of all queues that are ready
compete, the lowest arbitration key wins, the frame occupies the wire for its modelled duration and
is stamped with its end-of-frame time. A frame is ready when its node wrote it (the node's send
stamp, carried in the record) or at its release time — never when the broker happened to read it.

The broker decides which frame takes the slot starting at ``s`` once the run clock has passed
``s + horizon`` (the commit horizon), so frames written before ``s`` but read a little later still
compete for it; a frame read after a slot it was ready for was given away goes out at the next free
slot and is counted as ``displaced``. The decided frame is forwarded to every node at once, with its
end-of-frame stamp; the ``simcan`` node hands it to its application at that time.

The bus also measures the harness (:mod:`hil.harness`): ``send`` (how late the broker read a frame
against its node's stamp), ``broker`` (how late it woke against its plan), and keeps the ``delivery``
histograms its nodes report.
"""

from __future__ import annotations

import heapq
import json
import socket
import time
from collections import deque
from typing import Any

from hil.harness import ErrorHistogram
from hil.simbus.faults import FaultEvent, FaultSet, parse_fault
from hil.simbus.protocol import (
    CONTROL, EVENT, EVENT_CODE, F_BRS, F_ERROR, F_EXTENDED, F_FD, F_OWN, FRAME, HEADER, HELLO, HELLO_EVENTS,
    HEADER_SIZE, HELLO_NO_FRAMES, HELLO_OWN, MAX_RECORD, WELCOME_FD)
from hil.simbus.wire import WireModel, arbitration_key

_unpack = HEADER.unpack_from
_monotonic_ns = time.monotonic_ns

TX_QUEUE_LIMIT = 1024  # frames a node may have pending before the broker stops reading from it
RX_QUEUE_LIMIT = 100_000  # records waiting for a slow reader before it overruns (records are dropped)
READ_BATCH = 64  # records read from one client per loop turn (fairness)
COMMIT_HORIZON_NS = 50_000  # at most this long after a slot's start the broker waits for frames written before it

# a pending frame: (ready_ns, can_id, flags, dlc, data, sender)
Pending = tuple[int, int, int, int, bytes, Any]


class Client:
    """One connection to a bus: a node that sends and receives, or a control-only connection."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.name = ""
        self.own = False
        self.events = False
        self.frames = False  # until its HELLO: nothing may reach it before the welcome
        self.tx: deque[Pending] = deque()
        self.out: deque[bytes] = deque()
        self.overruns = 0
        self.departed = False  # disconnected, but frames it sent are still waiting for the wire
        self.delivery: ErrorHistogram | None = None  # the node's latest (cumulative) delivery report

    def fileno(self) -> int:
        return self.sock.fileno()

    def deliver(self, record: bytes) -> None:
        """Send now, or queue behind what is already waiting (the order is never changed)."""
        if not self.out:
            try:
                self.sock.send(record)
                return
            except BlockingIOError:
                pass
            except OSError:
                return  # the peer went away; the read side notices and drops the client
        if len(self.out) >= RX_QUEUE_LIMIT:
            self.overruns += 1
            return
        self.out.append(record)

    def flush(self) -> None:
        out = self.out
        try:
            while out:
                self.sock.send(out[0])
                out.popleft()
        except BlockingIOError:
            pass
        except OSError:
            out.clear()


class SimBus:
    """The state of one emulated bus; the broker feeds it records and the clock."""

    def __init__(self, name: str, path: str, model: WireModel, faults: FaultSet, fd: bool,
                 horizon_ns: int = COMMIT_HORIZON_NS, welcome: dict[str, Any] | None = None):
        self.name = name
        self._welcome = json.dumps(welcome or {}).encode()  # bitrates and epoch offset, for every node
        self.path = path
        self.model = model
        self.faults = faults
        self.fd = fd
        self.horizon = commit_horizon(model, horizon_ns)
        self.clients: list[Client] = []
        self.free_at = 0  # run-clock time the wire is free again (after intermission)
        self.last_start = 0  # the latest slot given away, and to whom
        self.last_sender: Any = None
        self.plan: int | None = None  # when advance() next wants to run (for the broker's lateness)
        self.delayed: list[tuple[int, int, Pending]] = []  # heap (ready_ns, seq, frame)
        self._seq = 0
        self.since_ns = 0
        self.stats = {"frames": 0, "error_frames": 0, "faulted": 0, "busy_ns": 0, "displaced": 0}
        self.send_error = ErrorHistogram()
        self.broker_error = ErrorHistogram()
        self.delivery_departed = ErrorHistogram()  # the last reports of nodes that left

    # ---- input -------------------------------------------------------------------------------

    def receive(self, client: Client, now: int) -> bool:
        """Read up to a batch of records from ``client``; False when it disconnected.

        The hot path (a FRAME, no fault armed) is kept to a few steps: one ``recv``, one unpack, the
        read time against the node's stamp, and an append to the sender's queue."""
        recv, tx, faults, send_error = client.sock.recv, client.tx, self.faults, self.send_error
        for _ in range(READ_BATCH):
            if len(tx) >= TX_QUEUE_LIMIT:
                return True
            try:
                record = recv(MAX_RECORD)
            except BlockingIOError:
                return True
            except ConnectionResetError:  # it closed with frames unread; what it sent is still queued
                continue
            except OSError:
                return False
            if len(record) < HEADER_SIZE:
                return False  # disconnected, or not speaking the protocol: either way it is dropped
            kind, flags, dlc, can_id, t_ns = _unpack(record)
            if kind == FRAME:
                # ready at the node's stamp (its send time, or a release time still to come); a
                # record without one (t = 0) is ready when read (each read of a batch is timed)
                now = _monotonic_ns()
                if t_ns <= 0:
                    t_ns = now
                elif t_ns < now:
                    send_error.add(now - t_ns)
                if t_ns < self.last_start and self.last_sender is not client:
                    self.stats["displaced"] += 1  # it could have competed for a slot already given away
                frame = (t_ns, can_id, flags & ~F_OWN, dlc, record[HEADER_SIZE:], client)
                if faults.armed:
                    self._submit(client, frame, now)
                else:
                    tx.append(frame)
            else:
                self._request(client, kind, flags, record, now)
        return True

    def _request(self, client: Client, kind: int, flags: int, record: bytes, now: int) -> None:
        """A HELLO (join) or CONTROL record (anything else is ignored)."""
        if kind == HELLO:
            client.own = bool(flags & HELLO_OWN)
            client.events = bool(flags & HELLO_EVENTS)
            client.frames = not flags & HELLO_NO_FRAMES
            client.name = record[HEADER_SIZE:].decode(errors="replace")
            # the welcome: the node is on the bus from now on; flags say whether the bus is CAN FD,
            # the payload its bitrates and the run's epoch offset
            client.deliver(HEADER.pack(HELLO, WELCOME_FD if self.fd else 0, 0, 0, now) + self._welcome)
            if client.events:  # faults armed before it joined (the rig's own, for one)
                for event in self.faults.armed_events():
                    client.deliver(event_record(event))
        elif kind == CONTROL:
            try:
                request = json.loads(record[HEADER_SIZE:])
            except ValueError as exc:
                request = {"op": f"(not JSON: {exc})"}
            if isinstance(request, dict) and request.get("op") == "harness":  # a node's report: no reply
                self._report(client, request)
                return
            reply = self.control(request if isinstance(request, dict) else {"op": repr(request)}, now)
            client.deliver(HEADER.pack(CONTROL, 0, 0, 0, now) + json.dumps(reply).encode())

    @staticmethod
    def _report(client: Client, request: dict) -> None:
        """Keep a node's latest cumulative delivery histogram (a malformed one is ignored)."""
        try:
            client.delivery = ErrorHistogram.from_json(request["delivery"])
        except (KeyError, TypeError, ValueError, AttributeError):
            pass

    def _submit(self, client: Client, frame: Pending, now: int) -> None:
        if self.faults.armed:
            by, event = self.faults.delay(frame[1], now)
            if event is not None:  # delayed (by > 0)
                self.event(event)
                self._seq += 1
                heapq.heappush(self.delayed, (frame[0] + by, self._seq, frame))
                return
        client.tx.append(frame)

    def depart(self, client: Client) -> None:
        """``client`` disconnected: it receives nothing more; frames it already sent still go out."""
        client.departed = True
        client.frames = client.own = client.events = False
        client.out.clear()
        if client.delivery is not None:
            self.delivery_departed.merge(client.delivery)
            client.delivery = None
        if not client.tx:
            self.clients.remove(client)

    # ---- the wire ----------------------------------------------------------------------------

    def advance(self, now: int) -> int | None:
        """Run the wire up to ``now``: decide every slot whose commit horizon has passed and forward
        its frame (stamped with its end of frame) to every node at once.

        Returns the run-clock time this bus next needs the broker (None: nothing pending).
        """
        if self.plan is not None and now >= self.plan:
            self.broker_error.add(now - self.plan)
        clients, faults, horizon = self.clients, self.faults, self.horizon
        while True:
            # the earliest ready time among the heads of the queues, the delayed frames, a babbler
            t0 = None
            for c in clients:
                tx = c.tx
                if tx and (t0 is None or tx[0][0] < t0):
                    t0 = tx[0][0]
            delayed = self.delayed
            if delayed and (t0 is None or delayed[0][0] < t0):
                t0 = delayed[0][0]
            babbler = faults.babble_ready() if faults.babblers else None
            if babbler is not None and (t0 is None or babbler.next_ns < t0):
                t0 = babbler.next_ns
            if t0 is None:
                self.plan = None
                return None
            start = self.free_at if self.free_at > t0 else t0
            if start + horizon > now:
                self.plan = start + horizon
                return self.plan
            self._start(self._arbitrate(start, babbler), start)

    def _arbitrate(self, start: int, babbler) -> Pending:
        """Remove and return the frame that wins arbitration among those ready at ``start``.

        Arbitration keys are only computed when a second frame competes (one sender is the usual case)."""
        best: Client | None = None
        best_head: Pending | None = None  # best's first frame
        best_key = None
        from_delayed = False
        for c in self.clients:
            tx = c.tx
            if tx and tx[0][0] <= start:
                head = tx[0]
                if best_head is None:
                    best, best_head = c, head
                    continue
                if best_key is None:
                    best_key = arbitration_key(best_head[1], best_head[2])
                key = arbitration_key(head[1], head[2])
                if key < best_key:
                    best, best_head, best_key = c, head, key
        delayed = self.delayed and self.delayed[0][0] <= start
        babbling = babbler is not None and babbler.next_ns <= start
        if best_head is not None and best_key is None and (delayed or babbling):
            best_key = arbitration_key(best_head[1], best_head[2])
        if delayed:
            frame = self.delayed[0][2]
            key = arbitration_key(frame[1], frame[2])
            if best_key is None or key < best_key:
                from_delayed, best_key = True, key
        if babbling:
            frame = self._babble_frame(babbler)
            key = arbitration_key(frame[1], frame[2])
            if best_key is None or key < best_key:
                babbler.sent += 1
                babbler.next_ns = self._babble_next(babbler, start, frame)
                return frame
        if from_delayed:
            return heapq.heappop(self.delayed)[2]
        assert best is not None  # a frame is ready at start (the caller found its time)
        frame = best.tx.popleft()
        if best.departed and not best.tx:
            self.clients.remove(best)
        return frame

    def _start(self, frame: Pending, start: int) -> None:
        """Give the slot at ``start`` to ``frame`` and forward it, stamped with its end of frame."""
        _, can_id, flags, dlc, data, sender = frame
        duration, eof_offset = self.model.timing(can_id, flags, dlc, data)
        self.last_start, self.last_sender = start, sender
        if self.faults.armed:
            event = self.faults.on_wire(can_id, start)
            if event is not None:
                self.event(event)
                self.stats["faulted"] += 1
                if event.kind != "corrupt":
                    return  # dropped / bus off: nothing on the wire
                # damaged in flight: the receivers flag an error where the frame ends
                frame = frame[:2] + (F_ERROR | (flags & F_EXTENDED), 0, b"", frame[5])
        self.free_at = start + duration
        self.stats["busy_ns"] += duration
        self._deliver(frame, start + eof_offset)

    def _deliver(self, frame: Pending, eof: int) -> None:
        _, can_id, flags, dlc, data, sender = frame
        self.stats["error_frames" if flags & F_ERROR else "frames"] += 1
        record = HEADER.pack(FRAME, flags, dlc, can_id, eof) + data
        for c in self.clients:
            if c is sender:
                if c.own:
                    c.deliver(HEADER.pack(FRAME, flags | F_OWN, dlc, can_id, eof) + data)
            elif c.frames:
                c.deliver(record)

    def _babble_frame(self, babbler) -> Pending:
        spec = babbler.spec
        flags = (F_EXTENDED if spec.id > 0x7FF else 0) | (F_FD if spec.dlc > 8 else 0)
        data = (babbler.sent & 0xFF).to_bytes(1, "big") * spec.dlc
        return (babbler.next_ns, spec.id, flags, spec.dlc, data, None)

    def _babble_next(self, babbler, start: int, frame: Pending) -> int:
        if babbler.spec.rate is None:  # as fast as the wire allows (wire time even with the model off)
            return start + self.model.wire_duration(*frame[1:5])
        return babbler.next_ns + round(1e9 / babbler.spec.rate)

    # ---- events, control ---------------------------------------------------------------------

    def event(self, event: FaultEvent) -> None:
        record = event_record(event)
        for c in self.clients:
            if c.events:
                c.deliver(record)

    def control(self, request: dict, now: int) -> dict:
        """Arm / clear / list faults, or report statistics; errors come back as ``{"error": ...}``."""
        op = request.get("op")
        if op == "arm":
            try:
                spec = parse_fault(request.get("fault"))
            except ValueError as exc:
                return {"error": str(exc)}
            origin = request.get("origin_ns") or now
            fault, event = self.faults.arm(spec, origin)
            self.event(event)
            return fault.describe()
        if op == "clear":
            events = self.faults.clear(request.get("fault"), now)
            for event in events:
                self.event(event)
            return {"cleared": [e.detail["fault"] for e in events]}
        if op == "faults":
            return {"faults": [f.describe() for f in self.faults.armed]}
        if op == "stats":
            return self.snapshot(now)
        return {"error": f"unknown control op {op!r}; expected arm, clear, faults or stats"}

    def snapshot(self, now: int) -> dict:
        span = max(1, now - self.since_ns)
        return {**self.stats, "load": self.stats["busy_ns"] / span, "since_ns": self.since_ns, "now_ns": now,
                "clients": sum(1 for c in self.clients if c.frames),
                "pending": sum(len(c.tx) for c in self.clients) + len(self.delayed),
                "overruns": sum(c.overruns for c in self.clients), "horizon_ns": self.horizon,
                "harness": self.harness()}

    def harness(self) -> dict[str, dict]:
        """``{kind: histogram JSON}`` for this bus since it came up: every node's delivery (the
        latest report of each, those that left too), the broker's send and broker errors."""
        delivery = ErrorHistogram()
        delivery.merge(self.delivery_departed)
        for c in self.clients:
            if c.delivery is not None:
                delivery.merge(c.delivery)
        return {"delivery": delivery.to_json(), "send": self.send_error.to_json(),
                "broker": self.broker_error.to_json()}


def commit_horizon(model: WireModel, limit_ns: int = COMMIT_HORIZON_NS) -> int:
    """How long after a slot's start its frame is decided: ``limit_ns``, but at most half the
    shortest frame's wire time, so a frame forwarded then still has half its wire time to reach the
    nodes before its end of frame; 0 without a wire model (there is no wire time to wait in)."""
    if not model.enabled:
        return 0
    shortest = min(model.wire_duration(0, 0, 0, b""), model.wire_duration(0, F_FD | F_BRS, 0, b""))
    return min(limit_ns, shortest // 2)


def event_record(event: FaultEvent) -> bytes:
    return HEADER.pack(EVENT, EVENT_CODE[event.kind], 0, event.id, event.t_ns) + event.detail_json()
