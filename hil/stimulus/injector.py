"""The injector: plays a timeline onto rig buses from its own process, on absolute deadlines.

The parent (:func:`play`) turns the timeline into a compact plan and starts a child process, so
the replay shares nothing with the controller's threads, garbage or locks. The child minimises its
timer slack, holds ``/dev/cpu_dma_latency`` when permitted, freezes the garbage collector, shortens
the GIL's switch interval to 50 µs (its echo readers take the GIL from a spinning send loop within
that, not 5 ms), opens the buses itself (python-can / pyserial, from :meth:`RigBuses.can_config`),
asks for a short time slice (so it runs soon after each wake-up on a busy host) and then:

* on an emulated bus, hands each frame to the simbus broker ahead of time with ``send_at`` and a
  release time, so the wire — not a Python wake-up — decides when it goes out;
* on a network, sleeps to each datagram's deadline and sends it, with the datagrams already due
  on that network in one ``sendmmsg`` (:meth:`hil.net.udp.Sender.send_prepared`);
* on a real bus, sleeps to an absolute deadline, spins the last stretch (only as long as its own
  sleeps have shown necessary: :class:`~hil.stimulus.realtime.Waker`) and sends. Adapters that give
  the host no echo of its own frames (SLCAN, socketcand) are measured, when their bus is emulated,
  by a second simcan node that sees the frames go out (a witness); on a real one, not at all, and
  the report says so per bus (``host["lateness"]``).

Deadlines are ``start + offset + step.t_ns`` — never a sum of sleeps — where ``offset`` only grows
when a closed-loop wait held the timeline. A frame is released ``eof`` before its planned time,
``eof`` being its modelled end-of-frame offset, so its end of frame lands on the planned time (log
timestamps are end-of-frame times). Each bus is read back with ``receive_own_messages``, which
gives every frame's real time, hence the :class:`ReplayReport`: on an emulated bus, when the
injector's own node handed the echo out (the broker's stamp is the model's promise, and timed
release always keeps it); on a real bus, the adapter's echo timestamp. Echoes are paired with the
frames sent by content and order, so a lost echo costs only its own frame: the report names the
frames never seen (count and ids per bus).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hil import cancel
from hil.clock import now_ns
from hil.dbc import signal_holds
from hil.errors import BusError, HilError, ReplayStoppedError, StimulusError
from hil.lifecycle.children import python_argv, spawn
from hil.canframe import message_flags, to_message
from hil.stimulus.events import CanEvent, PacketEvent
from hil.stimulus.report import ReplayReport
from hil.stimulus.timeline import Timeline

if TYPE_CHECKING:
    import can
    import cantools

    from hil.buses import RigBuses
    from hil.stimulus.realtime import Waker

EXIT_S = 5.0  # how long the injector has to end after its last message, or after SIGTERM
LEAD_NS = 250_000_000  # how far ahead frames are handed to the simbus broker (it applies back-pressure)
HAND_OVER_BATCH_NS = 10_000_000
START_MARGIN_NS = 50_000_000  # play starts this long after the child is ready
PROGRESS_EVERY_NS = 250_000_000
ECHO_GRACE_NS = 2_000_000_000  # how long to wait for the last echoes after the last send
ECHO_LOOKAHEAD = 4096  # how many frames an echo may be behind the next expected one (faults took them)
NO_ECHO = ("slcan", "socketcand")  # python-can drivers whose device gives the host no echo of its own frames
UNSEEN_IDS = 20  # ids of frames never seen on the bus named in the report
SERIAL, PACKET = -1, -2  # a plan step's id for a serial chunk, a UDP datagram
DRAIN_SLACK_NS = 30_000  # kernel send stamps are read until this long before the next datagram's deadline
STAMP_BACKLOG, STAMP_BATCH = 256, 8  # a replay behind its deadlines still reads 8 stamps per datagram sent
# while more than 256 are queued: the error queue holds ~500 (net.core.rmem_max), the rest would be lost
MAX_BATCH = 16  # datagrams already due that go out in one system call (a sender catching up)
SWITCH_INTERVAL_S = 50e-6  # how long a thread that wants the GIL waits before its holder must let go (5 ms
# by default): the echo readers otherwise waited out the send loop's spin, up to 2 ms, before they
# could stamp an echo, and that wait was reported as the frame's lateness


@dataclass
class ReplayProgress:
    """How far a replay is: sent to ``on_progress`` at the play start, then every 250 ms.
    ``elapsed_ns`` counts from the play start (so ``now − elapsed_ns`` is the start)."""

    sent: int
    planned: int
    echoed: int
    late_max_ns: int
    elapsed_ns: int


@dataclass
class _Bus:
    name: str
    kind: str  # "can" | "serial" | "ethernet"
    config: dict[str, Any]  # can.Bus kwargs, or {"port", "baudrate"}, or hil's {"address", "interface"} on the network
    timed: bool = False  # simbus timed release, frames handed over ahead
    simcan: bool = False  # an emulated bus: send_at is available
    eof_model: tuple[int, int | None, bool] | None = None  # bitrate, data bitrate, wire model on
    witness: dict[str, Any] | None = None  # no own echo: a simcan node that sees the frames go out instead
    echo: bool = True  # False: no own echo and no witness; the lateness of its frames is not measured


@dataclass
class _WaitPlan:
    index: int
    t_ns: int
    bus: int
    id: int
    label: str
    timeout_ns: int
    message: cantools.database.can.Message | None = None  # when a signal is tested
    signal: str | None = None
    op: str | None = None
    value: float | None = None


@dataclass
class _Plan:
    buses: list[_Bus]
    steps: list[tuple[int, int, int, int, bytes, int]]  # t_ns, bus index, id, flags, data, eof_ns
    waits: list[_WaitPlan] = field(default_factory=list)
    lead_ns: int = LEAD_NS
    dests: list[tuple[str, int]] = field(default_factory=list)  # a PACKET step's flags index this


def play(timeline: Timeline, buses: RigBuses, on_progress: Callable[[ReplayProgress], None] | None = None,
         timed_release: bool = True, deadline_ns: int | None = None,
         on_start: Callable[[int], None] | None = None) -> ReplayReport:
    """Play ``timeline`` onto ``buses`` (a :class:`hil.buses.RigBuses`); blocks until done.
    ``on_start`` learns the play start (run clock) ``START_MARGIN_NS`` before it comes, before any
    frame is sent: time enough to arm what must hold from the first frame on.
    ``timed_release`` False makes emulated buses use the sleep-and-spin path too (for comparison).
    At ``deadline_ns`` (run clock) the injector is stopped and :class:`ReplayStoppedError` raised,
    so a replay can never outlive the bench that plays it.

    The child is ``python -m hil.stimulus.injector``: the plan goes in on stdin, progress and the
    report come back on stdout (pickled, between trusted processes of one run)."""
    plan = make_plan(timeline, buses, timed_release)
    child = spawn(python_argv("hil.stimulus.injector"), what="the injector", stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE)
    proc = child.proc
    assert proc.stdin is not None and proc.stdout is not None  # spawned with both pipes
    stopped = threading.Event()
    kind = None

    def stop() -> None:
        stopped.set()
        child.terminate()

    timer = None
    if deadline_ns is not None:
        timer = threading.Timer(max(0.0, (deadline_ns - now_ns()) / 1e9), stop)
        timer.daemon = True
        timer.start()
    try:
        pickle.dump(plan, proc.stdin)
        proc.stdin.close()
        while True:
            cancel.check()
            try:
                kind, payload = pickle.load(proc.stdout)
            except EOFError:
                if stopped.is_set():
                    raise ReplayStoppedError("the replay was stopped at its deadline") from None
                proc.wait()
                raise StimulusError(f"the injector process {child.ended()} before the replay ended") from None
            if kind == "start" and on_start is not None:
                on_start(payload)
            elif kind == "progress" and on_progress is not None:
                on_progress(payload)
            elif kind == "error":
                cls = {"BusError": BusError, "StimulusError": StimulusError}.get(payload[0], StimulusError)
                raise cls(payload[1])
            elif kind == "done":
                return payload
    finally:
        if timer is not None:
            timer.cancel()
        if kind in ("done", "error"):  # it ends by itself after its last message
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(EXIT_S)
        child.stop(EXIT_S)
        proc.stdout.close()


def make_plan(timeline: Timeline, buses: RigBuses, timed_release: bool = True) -> _Plan:
    """Timeline + RigBuses → what the child needs (plain data, picklable)."""
    from hil.simbus.wire import WireModel
    from hil.stimulus.overrides import load_dbc

    names = timeline.buses()
    index = {n: i for i, n in enumerate(names)}
    plan_buses = []
    for n in names:
        spec = buses.rig.buses[n]
        if spec.kind == "can":
            cfg = buses.can_config(n)
            simcan = cfg.get("interface") == "simcan"
            no_echo = cfg.get("interface") in NO_ECHO
            witness = buses.can_config(n, side="device") if no_echo and spec.emulated else None
            plan_buses.append(_Bus(n, "can", cfg, timed_release and simcan, simcan,
                                   (spec.bitrate, spec.data_bitrate, spec.wire_model or not spec.emulated),
                                   witness, not no_echo or witness is not None))
        elif spec.kind == "ethernet":
            from hil.net import plan as net_plan

            net = net_plan(buses.rig)[n]
            plan_buses.append(_Bus(n, "ethernet", {"address": net.hil.address, "interface": net.interface}))
        else:
            plan_buses.append(_Bus(n, "serial", {"port": buses.serial_port(n, "host"), "baudrate": spec.baudrate}))
    models = {i: WireModel(b.eof_model[0], b.eof_model[1], b.eof_model[2])
              for i, b in enumerate(plan_buses) if b.eof_model}
    steps = []
    dests: dict[tuple[str, int], int] = {}
    for s in timeline.steps:
        b = index[s.bus]
        ev = s.event
        if isinstance(ev, CanEvent):
            eof = models[b].timing(ev.id, ev.flags, _dlc(ev), ev.data)[1]
            steps.append((s.t_ns, b, ev.id, ev.flags, ev.data, eof))
        elif isinstance(ev, PacketEvent):
            assert ev.to is not None  # the timeline aimed it at its rig destination
            steps.append((s.t_ns, b, PACKET, dests.setdefault(ev.to, len(dests)), ev.data, 0))
        else:
            steps.append((s.t_ns, b, SERIAL, 0, ev.data, 0))
    db = load_dbc(timeline.dbc)
    waits = []
    for w in timeline.waits:
        u = w.until
        label = f"wait at {w.at_ns / 1e9:g} s for {u.message or f'{u.id:#x}'}" + (
            f" {u.signal} {u.op} {u.value:g}" if u.op else f".{u.signal}" if u.signal else "") + f" on {u.bus}"
        message = None
        if u.signal:
            assert db is not None  # a signal wait names a DBC message (Stimulus.problems)
            message = db.get_message_by_frame_id(w.id)
        waits.append(_WaitPlan(w.index, w.t_ns, index[u.bus], w.id, label, w.timeout_ns, message, u.signal, u.op,
                               u.value))
    return _Plan(plan_buses, steps, waits, dests=list(dests))


def _lateness_source(b: _Bus) -> str:
    """How the lateness of frames sent on ``b`` is measured (for the report: say which, honestly)."""
    if b.simcan:
        return "delivered"
    interface = b.config.get("interface")
    if b.witness is not None:
        return (f"simbus witness: {interface} gives no own echo, so a second node on the emulated bus "
                "sees each frame go out (delivered)")
    if not b.echo:
        return f"not measured: {interface} gives no own echo"
    return "echo timestamp"


def _dlc(ev: CanEvent) -> int:
    from hil.simbus.wire import fd_dlc

    return fd_dlc(len(ev.data)) if ev.flags & 0x08 else len(ev.data)


# ---- the child process ---------------------------------------------------------------------------

def _child_main() -> None:
    """Entry of the injector process: plan on stdin, pickled messages on stdout."""
    from hil.lifecycle import children, signals

    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing else may write into the message stream
    children.watch_supervisor()  # a killed controller takes the replay with it

    def send(message: tuple[str, Any]) -> None:  # (kind, any picklable payload)
        pickle.dump(message, out)
        out.flush()

    # the parent stops us with SIGTERM, which unwinds through the cleanup (buses shut down, PM QoS
    # request released)
    with signals.as_child():
        try:
            plan = pickle.load(sys.stdin.buffer)
            send(("done", _Replay(plan, send).run()))
        except HilError as exc:
            send(("error", (type(exc).__name__, str(exc))))
        except Exception as exc:  # reported to the parent with its cause in the message
            send(("error", ("StimulusError", f"injector failed: {type(exc).__name__}: {exc}")))
        finally:
            out.close()


class _Replay:
    """The child's state: open buses, echo readers, the send loop."""

    def __init__(self, plan: _Plan, send: Callable[[tuple[str, Any]], None]):
        self.plan = plan
        self.send = send
        self.handles: list[Any] = []  # per bus, by its kind: a can.BusABC, serial.Serial or net.udp.Sender
        self.witnesses: list[can.BusABC | None] = []  # per CAN bus, the node that sees its frames go out (no own echo), or None
        self.planned: list[list[int]] = [[] for _ in plan.buses]  # per bus, planned times in send order
        # per bus in send order: (id, data) of a frame, (destination, step) of a datagram
        self.sent: list[list[tuple[int, Any]]] = [[] for _ in plan.buses]
        self.echoed: list[int] = [0 for _ in plan.buses]  # per bus, the planned frame the next echo may be
        self.paired: list[set[int]] = [set() for _ in plan.buses]  # per bus, the sent frames an echo was paired with
        self.strays = 0  # echoes that were none of the frames sent
        self.lateness: list[int] = []
        self.echoes: dict[str, list[tuple[int, int, int, bytes]]] = {b.name: [] for b in plan.buses}
        self.stop = threading.Event()
        self.armed: _WaitPlan | None = None
        self.met = threading.Event()
        self.met_ns = 0
        self.late_max = 0
        self.reader_error: str | None = None
        self.waker: Waker | None = None  # the send loop's
        self.packets: dict[str, list[tuple[int, int, int]]] = {
            b.name: [] for b in plan.buses if b.kind == "ethernet"}  # per network: (sent, step, lateness) per datagram
        self.returned: list[list[int]] = [[] for _ in plan.buses]  # per network, when each sendto returned

    def run(self) -> ReplayReport:
        from hil.stimulus import realtime

        host: dict[str, Any] = {"timer_slack_ns": realtime.set_timer_slack(1), "slice": realtime.request_short_slice()}
        dma = realtime.hold_cpu_dma_latency(0)
        host["cpu_dma_latency"] = dma.why
        host["timed_release"] = [b.name for b in self.plan.buses if b.timed]
        host["lateness"] = {b.name: _lateness_source(b) for b in self.plan.buses if b.kind == "can"}
        readers = []
        try:
            self._open()
            realtime.freeze_gc()  # before the readers: its full collection holds the GIL for tens of ms
            host["gc"] = "frozen"
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            readers = [threading.Thread(target=self._read, args=(i,), daemon=True)
                       for i, b in enumerate(self.plan.buses) if b.kind == "can" and b.echo]
            for t in readers:
                t.start()
            start, sent, waits, aborted = self._send_all()
            assert self.waker is not None  # _send_all's
            host["wake"] = self.waker.summary()
            self._await_echoes(sent)
            self._await_stamps()
            if self.reader_error:
                raise BusError(f"injector: {self.reader_error}")
        finally:
            realtime.thaw_gc()
            self.stop.set()
            for t in readers:
                t.join()
            for h in [*self.handles, *filter(None, self.witnesses)]:
                h.close() if hasattr(h, "is_open") else h.shutdown()
            dma.release()
        host["lateness"].update(self._packet_sources())
        host["senders"] = {b.name: self.handles[i].src for i, b in enumerate(self.plan.buses) if b.kind == "ethernet"}
        planned_all = sorted(t for per_bus in self.planned for t in per_bus)
        actual = sorted([t for e in self.echoes.values() for t, *_ in e]
                        + [t for p in self.packets.values() for t, *_ in p]) or [0]
        host["stray_echoes"] = self.strays
        return ReplayReport(
            frames_planned=len(self.plan.steps), frames_sent=sent, frames_echoed=len(self.lateness),
            lateness_ns=self.lateness, span_planned_ns=(planned_all[-1] - planned_all[0]) if planned_all else 0,
            span_actual_ns=actual[-1] - actual[0], start_ns=start, waits=waits, aborted=aborted, host=host,
            echoes=self.echoes, unseen=self._unseen(), packets=self.packets,
            frames_unmeasured=sum(len(self.sent[i]) for i, b in enumerate(self.plan.buses) if not b.echo))

    def _unseen(self) -> dict[str, dict[str, Any]]:
        """Per bus whose frames echo: how many sent frames no echo was paired with, and their ids."""
        out = {}
        for i, b in enumerate(self.plan.buses):
            missing = [can_id if b.kind == "can" else self.plan.dests[can_id][1]  # a datagram: its port
                       for k, (can_id, _) in enumerate(self.sent[i]) if k not in self.paired[i]]
            if b.echo and missing:
                out[b.name] = {"count": len(missing), "ids": sorted(set(missing))[:UNSEEN_IDS]}
        return out

    def _open(self) -> None:
        import can
        import serial

        for b in self.plan.buses:
            try:
                if b.kind == "can":
                    self.handles.append(can.Bus(**b.config, receive_own_messages=True))
                    self.witnesses.append(None if b.witness is None else can.Bus(**b.witness))
                elif b.kind == "ethernet":
                    from hil.net.udp import Sender

                    self.handles.append(Sender(b.config["address"], b.config["interface"]))
                    self.witnesses.append(None)
                else:
                    self.handles.append(serial.serial_for_url(b.config["port"], baudrate=b.config["baudrate"]))
            except Exception as exc:
                raise BusError(f"injector cannot open bus {b.name!r}: {exc}") from None

    def _read(self, i: int) -> None:
        """Collect echoes (own frames) and watch for the armed wait's frame on bus ``i``. Echoes are
        read as they come (read in batches, each batch held the GIL for a millisecond and more
        while the send loop waited for it)."""
        from hil.clock import AdapterClock, frame_ns, now_ns

        witness = self.witnesses[i]
        bus = self.handles[i] if witness is None else witness
        name = self.plan.buses[i].name
        simcan = self.plan.buses[i].simcan or witness is not None  # run-clock times: when it was delivered
        clock = None if simcan else AdapterClock()
        planned, echoes, lateness = self.planned[i], self.echoes[name], self.lateness
        while not self.stop.is_set():
            try:
                msg = bus.recv(0.05)
                delivered = now_ns()
            except Exception as exc:  # the bus went down: the send loop reports it
                self.reader_error = f"bus {name!r} went down: {exc}"
                return
            if msg is None:
                continue
            if witness is not None:
                t = delivered
            else:
                t = frame_ns(msg) if clock is None else clock.to_run_clock(msg.timestamp, delivered)
            k = None
            if not msg.is_rx or witness is not None:  # a witness's frames are its own echoes if they are any
                k = self._sent_index(i, msg.arbitration_id, bytes(msg.data), strict=witness is not None)
            if k is not None:
                echoes.append((t, msg.arbitration_id, message_flags(msg), bytes(msg.data)))
                late = (delivered if simcan else t) - planned[k]
                lateness.append(late)
                self.late_max = max(self.late_max, late)
            elif (w := self.armed) is not None and w.bus == i and self._matches(w, msg):
                self.met_ns = t
                self.armed = None
                self.met.set()

    def _sent_index(self, i: int, can_id: int, data: bytes, strict: bool = False) -> int | None:
        """Which frame sent on bus ``i`` an echo is: the next one not yet paired with its id and
        data (one node's frames reach the wire in the order sent). Frames a fault took off the
        wire, or whose echo was lost, are passed over and reported as unseen, so they do not shift
        the lateness of the frames after them. An echo that is none of the frames sent is a stray
        (counted, never paired); with ``strict`` (a witness node, which sees every node's frames)
        it is simply another node's frame (None)."""
        sent, first = self.sent[i], self.echoed[i]
        k = next((j for j in range(first, min(len(sent), first + ECHO_LOOKAHEAD)) if sent[j] == (can_id, data)), None)
        if k is None:
            self.strays += not strict
            return None
        self.echoed[i] = k + 1
        self.paired[i].add(k)
        return k

    @staticmethod
    def _matches(w: _WaitPlan, msg: can.Message) -> bool:
        return msg.arbitration_id == w.id and signal_holds(w.message, msg.data, w.signal, w.op, w.value)

    def _send_all(self) -> tuple[int, int, list[dict[str, Any]], str | None]:
        """The send loop (messages are built before the start); returns start, frames sent, the
        waits' log and why it stopped early (or None)."""
        from hil.clock import now_ns
        from hil.stimulus.realtime import Waker

        plan, handles, planned = self.plan, self.handles, self.planned
        self.waker = waker = Waker()
        wait_until = waker.wait
        timed = [b.timed for b in plan.buses]
        simcan = [b.simcan for b in plan.buses]
        waits = {w.index: w for w in plan.waits}
        wait_log: list[dict[str, Any]] = []
        messages = [None if can_id < 0 else to_message(can_id, flags, data)
                    for _, _, can_id, flags, data, _ in plan.steps]
        steps = plan.steps
        for i, on in enumerate(plan.buses):
            if on.kind == "ethernet":
                handles[i].prepare([(data, plan.dests[to]) for _, bus, can_id, to, data, _ in steps
                                    if bus == i and can_id == PACKET])
        start = now_ns() + START_MARGIN_NS
        self.send(("start", start))
        offset = 0
        next_progress = start
        sent = k = 0
        while k < len(steps):
            t, b, can_id, flags, data, eof = steps[k]
            w = waits.get(k)
            if w is not None:
                begin = wait_until(start + offset + w.t_ns)
                self.met.clear()
                self.armed = w
                if not self.met.wait(w.timeout_ns / 1e9):
                    self.armed = None
                    wait_log.append({"wait": w.label, "waited_ns": now_ns() - begin, "met": False})
                    return start, sent, wait_log, f"{w.label}: not seen within {w.timeout_ns / 1e9:g} s"
                wait_log.append({"wait": w.label, "waited_ns": self.met_ns - begin, "met": True})
                offset = max(offset, self.met_ns - start - w.t_ns)
            deadline = start + offset + t
            if can_id == PACKET:
                if deadline - now_ns() > DRAIN_SLACK_NS:  # read send stamps while there is time
                    self._take_stamps(b, handles[b].stamps(deadline - DRAIN_SLACK_NS))
                elif len(self.sent[b]) - len(self.paired[b]) > STAMP_BACKLOG:  # behind: a few, or the queue overflows
                    self._take_stamps(b, handles[b].stamps(most=STAMP_BATCH * MAX_BATCH))
                now = wait_until(deadline)
                last = k + 1  # the datagrams on this network already due go out with it, in one call
                while (last < len(steps) and last - k < MAX_BATCH and steps[last][2] == PACKET
                       and steps[last][1] == b and last not in waits and start + offset + steps[last][0] <= now):
                    last += 1
                first = len(self.sent[b])
                for j in range(k, last):
                    planned[b].append(start + offset + steps[j][0])
                    self.sent[b].append((steps[j][3], j))  # a datagram: its destination and its step
                handles[b].send_prepared(first, last - k)
                self.returned[b] += [now_ns()] * (last - k)
                sent += last - k - 1
                k = last - 1
            elif can_id < 0:
                wait_until(deadline)
                handles[b].write(data)
                late = now_ns() - deadline
                self.lateness.append(late)
                self.late_max = max(self.late_max, late)
            else:
                planned[b].append(deadline)
                self.sent[b].append((can_id, data))
                if timed[b]:  # hand over in batches: one nap per HAND_OVER_BATCH_NS, not one per frame
                    release = deadline - eof
                    if (ahead := release - plan.lead_ns - now_ns()) > HAND_OVER_BATCH_NS:
                        time.sleep(ahead / 1e9)
                    handles[b].send_at(messages[k], release)
                elif simcan[b]:  # spin, then send with "now" as the release floor: the broker gives
                    sent_at = wait_until(deadline - eof)  # a batch it reads one time, which can
                    handles[b].send_at(messages[k], sent_at)  # precede a late frame's real send
                else:
                    wait_until(deadline - eof)
                    handles[b].send(messages[k])
            sent += 1
            k += 1
            if (now := now_ns()) >= next_progress:
                self._progress(sent, start, now)
                next_progress = now + PROGRESS_EVERY_NS
        if next_progress == start:  # everything was handed over before the start: report it at the start
            self._progress(sent, start, wait_until(start))
        return start, sent, wait_log, None

    def _progress(self, sent: int, start: int, now: int) -> None:
        """Tell the parent how far the replay is; the first report comes at or just after the start."""
        self.send(("progress", ReplayProgress(sent, len(self.plan.steps), len(self.lateness), self.late_max, now - start)))

    def _take_stamps(self, i: int, stamps: list[tuple[int, int]]) -> None:
        """Pair the kernel's send timestamps with network ``i``'s datagrams: a datagram's number on
        the socket is its place in the send order. They are read by the send loop itself, in the
        slack before a deadline (a reader thread would take the GIL from the loop at 10 kHz)."""
        planned, sent, paired = self.planned[i], self.sent[i], self.paired[i]
        packets = self.packets[self.plan.buses[i].name]
        for k, t in stamps:
            if k >= len(planned) or k in paired:
                self.strays += 1
                continue
            paired.add(k)
            late = t - planned[k]
            packets.append((t, sent[k][1], late))
            self.lateness.append(late)
            self.late_max = max(self.late_max, late)

    def _await_stamps(self) -> None:
        """Wait (up to the echo grace) for every datagram's send timestamp; a network whose kernel
        gave none is measured by when ``sendto`` returned instead (:meth:`_packet_sources` says so)."""
        from hil.clock import now_ns

        give_up = now_ns() + ECHO_GRACE_NS
        nets = [i for i, b in enumerate(self.plan.buses) if b.kind == "ethernet"]
        for i in nets:
            while len(self.paired[i]) < len(self.sent[i]) and self.handles[i].kernel and (left := give_up - now_ns()) > 0:
                self._take_stamps(i, self.handles[i].stamps(timeout_s=left / 1e9))
        for i in nets:
            if not self.paired[i] and self.sent[i]:  # no stamp at all: the kernel gives none here
                self.handles[i].kernel = False
                for k, (t, (_, step)) in enumerate(zip(self.returned[i], self.sent[i])):
                    self.paired[i].add(k)
                    self.packets[self.plan.buses[i].name].append((t, step, t - self.planned[i][k]))
                    self.lateness.append(t - self.planned[i][k])

    def _packet_sources(self) -> dict[str, str]:
        """How each network's datagrams were timed, for the report."""
        from hil.net.udp import KERNEL, RETURNED

        return {b.name: KERNEL if self.handles[i].kernel else RETURNED
                for i, b in enumerate(self.plan.buses) if b.kind == "ethernet"}

    def _await_echoes(self, sent: int) -> None:
        from hil.clock import now_ns

        expected = sum(len(p) for p, b in zip(self.planned, self.plan.buses) if b.echo and b.kind == "can")
        last = max((p[-1] for p in self.planned if p), default=now_ns())
        give_up = max(now_ns(), last) + ECHO_GRACE_NS
        while sum(len(e) for e in self.echoes.values()) < expected and now_ns() < give_up and not self.reader_error:
            time.sleep(0.01)


if __name__ == "__main__":  # run by play(); import by name so pickled classes resolve in the parent
    from hil.buses import without_mf4
    from hil.stimulus.injector import _child_main as main

    without_mf4()  # the injector sends frames, it never reads MF4: start in ~0.2 s, not ~1 s

    main()
