"""The recorder: every recorded bus and console of a run, on the run clock, into one MCAP file.

One reader thread per bus puts what arrives on one queue; one writer thread is the only user of the
MCAP writer. The queue is unbounded, so a slow disk costs memory, never frames. Every
``flush_interval`` the writer closes the open chunk and flushes the file, so a controller killed
with SIGKILL leaves a file readable up to the last flush (:func:`hil.recording.load` stops cleanly
at the cut).

Adapter timestamps of real buses (and of emulated ones reached through an emulated adapter) are
mapped onto the run clock with :class:`hil.clock.AdapterClock`; emulated (simbus) buses stamp Unix
seconds (python-can's convention) that :func:`hil.clock.frame_ns` turns back into run-clock ns. The
run's epoch offset is the recording's wall-clock anchor (metadata ``epoch_offset_ns``: Unix ns =
run-clock ns + offset; ``started_unix_ns``). The method used for each bus is written to the
metadata. For emulated buses the recorder also writes the harness error the broker gathered
(:mod:`hil.harness`) as ``harness`` events, ``{"buses": {bus: {kind: histogram JSON}}, "clocks":
{bus: AdapterClock summary}}``, every second and once when it stops; each is cumulative since the
bus came up, so the last one counts.
"""

from __future__ import annotations

import json
import platform
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO


from hil import __version__
from hil.clock import ROUND_TRIP_EVERY_NS, AdapterClock, RoundTrips, epoch_offset_ns, frame_ns, now_ns
from hil.errors import RecordingError
from hil.recording import schema
from hil.recording.mcapwriter import McapWriter
from hil.canframe import message_flags
from hil.values import ConsoleLine

if TYPE_CHECKING:
    import can
    from serial import Serial  # the module name is taken by Recorder.serial

    from hil.buses import RigBuses
    from hil.net.udp import Listener
    from hil.spec.rig import CanBus

CLOCK_MODEL = ("run clock = CLOCK_MONOTONIC in ns, shared by every process of the run; "
               "CAN times are end-of-frame times")
SIMBUS_CLOCK = "simbus: broker stamps end-of-frame on the run clock"
_POLL_S = 0.05
_IDLE_S = 0.005  # the writer's nap when the queue is empty
HARNESS_EVERY_S = 1.0  # how often the harness error of emulated buses is written while recording


USB_FRAME_S = 1e-3  # a USB full-speed frame: how long an adapter may hold a frame for the host


def adapter_clock(spec: CanBus, cfg: dict[str, Any], bus: can.BusABC | None = None, opened: list | None = None) -> AdapterClock:
    """The clock for a bus with adapter timestamps (``cfg``: how it is opened; ``bus``: the open
    bus; ``opened``: where a connection the clock keeps goes, to be shut down with the buses). An
    SLCAN device opened by hil (:mod:`hil.buses.slcan`) stamps each frame with its own millisecond
    counter (``Z1``, wrapping at 60 s) before its USB batch waits for the host; the envelope sees
    only the least batching and trip, so the bound holds a batch and the ``V`` round trips the
    driver measures as it reads (no one-way trip being longer than a round trip beside it). A device
    that refused ``Z1`` leaves python-can's host ``time.time()`` on arrival, late by the batching. A
    socketcand server stamps a frame at its end, then it reaches the host in a batch and a TCP trip:
    the bound holds the batch and the echo round trips on a connection of the clock's own
    (:class:`EchoTrips`)."""
    if spec.interface not in ("slcan", "socketcand"):
        return AdapterClock()
    batch = spec.adapter.batch / 1e9 if spec.emulated and spec.adapter else USB_FRAME_S
    if spec.interface == "slcan":
        from hil.buses.slcan import Z1_PERIOD_S, Z1_RESOLUTION_S, TimestampedSlcan

        if isinstance(bus, TimestampedSlcan) and bus.timestamps and (trip := bus.round_trip_ns) is not None:
            device = bus
            return AdapterClock(resolution_s=Z1_RESOLUTION_S, period_s=Z1_PERIOD_S, batch_s=batch,
                                round_trip_s=lambda: (device.round_trip_ns or trip) / 1e9,
                                note=f"the device's Z1 stamps, then USB batching of up to {batch * 1e3:g} ms and a "
                                     f"trip of at most the V round trip (each second's least, the greatest of those; "
                                     f"{trip / 1e3:.0f} µs at open)")
        return AdapterClock(batch_s=batch, note=f"the device refused Z1: python-can's slcan driver stamps on "
                                                f"arrival (host time.time()), after USB batching of up to "
                                                f"{batch * 1e3:g} ms, and host wake-ups are not bounded")
    trips = EchoTrips(cfg)
    if opened is not None:
        opened.append(trips)
    return AdapterClock(batch_s=batch, round_trip_s=trips,
                        note=f"after the server's stamp, batching of up to {batch * 1e3:g} ms and a TCP trip of "
                             f"at most the echo round trip (each second's least, the greatest of those; "
                             f"{(trips.trips.ns() or 0) / 1e3:.0f} µs at open)")


class EchoTrips:
    """socketcand ``< echo >`` round trips on a connection of the recorder's own (twenty at open,
    then one every :data:`~hil.clock.ROUND_TRIP_EVERY_NS` as frames are mapped), as seconds for
    :class:`AdapterClock`; ``shutdown`` closes the connection."""

    def __init__(self, cfg: dict[str, Any], at_open: int = 20):
        from hil.buses.adapters import EchoProbe

        try:
            self._probe = EchoProbe(cfg["host"], cfg["port"], str(cfg["channel"]))
            self.trips = RoundTrips()
            for _ in range(at_open):
                self.trips.add(self._probe.trip_ns())
        except OSError as exc:
            raise RecordingError(f"socketcand server {cfg['host']}: no echo round trip on {cfg['channel']}: "
                                 f"{exc}") from None
        self._next = now_ns() + ROUND_TRIP_EVERY_NS

    def __call__(self) -> float:
        if now_ns() >= self._next:
            self._next = now_ns() + ROUND_TRIP_EVERY_NS
            try:
                self.trips.add(self._probe.trip_ns())
            except OSError:  # the server went: the bus readers say so
                pass
        return (self.trips.ns() or 0) / 1e9  # twenty were taken at open

    def shutdown(self) -> None:
        self._probe.shutdown()


class Recorder:
    """Records buses ``names`` of ``buses`` (a :class:`hil.buses.RigBuses`, or None to feed frames
    only through :meth:`frame`) plus consoles and events into ``path``."""

    def __init__(self, path: str | Path, buses: RigBuses | None = None, names: Iterable[str] = (),
                 metadata: dict[str, Any] | None = None, *, flush_interval: float = 0.25,
                 chunk_size: int = 512 * 1024):
        self.path = Path(path)
        self._buses = buses
        self._names = list(names)
        self._metadata = dict(metadata or {})
        self._flush_interval = flush_interval
        self._chunk_size = chunk_size
        self._queue: deque = deque()  # append / popleft are atomic: producers never block
        self._stop = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writer_thread: threading.Thread | None = None
        self._opened: list[Any] = []  # per recorded bus: a can.BusABC, serial Serial or net.udp Listener
        self._emulated: list[str] = []  # recorded buses served by simbus: their harness error is recorded
        self._clocks: dict[str, AdapterClock] = {}  # buses with adapter timestamps: their clock's error too
        self._measured: dict[str, dict[str, Any]] = {}  # bus → harness figures measured elsewhere (networks)
        self._channels: dict[str, int] = {}
        self._schema_ids: dict[str, int] = {}
        self._writer: McapWriter | None = None
        self._file: BinaryIO | None = None
        self._error: BaseException | None = None
        self.counts: Counter = Counter()  # topic → messages written

    # -- feeding ---------------------------------------------------------------------------------
    def frame(self, bus: str, t_ns: int, can_id: int, flags: int, data: bytes, dlc: int | None = None) -> None:
        """Record one CAN frame on ``bus`` (run-clock ``t_ns``; ``dlc``: a remote frame's)."""
        self._queue.append((schema.CAN_PREFIX + bus, t_ns, schema.encode_can(can_id, flags, data, dlc)))

    def serial(self, bus: str, t_ns: int, data: bytes) -> None:
        self._queue.append((schema.SERIAL_PREFIX + bus, t_ns, schema.encode_serial(data)))

    def console(self, line: ConsoleLine) -> None:
        """Record one console line (a target's stdout/stderr or a console bus)."""
        self._queue.append((schema.CONSOLE_TOPIC, line.t_ns,
                         schema.encode_log(line.t_ns, line.source, line.text, line.stream)))

    def event(self, kind: str, data: dict[str, Any] | None = None, t_ns: int | None = None) -> None:
        """Record an event: a fault armed or cleared, a bench phase, ..."""
        t = now_ns() if t_ns is None else t_ns
        self._queue.append((schema.EVENTS_TOPIC, t, schema.encode_event(kind, data or {})))

    def injected(self, bus: str, frames: Iterable[tuple[int, int, int, bytes]]) -> None:
        """Record the injector's echoes ``(t_ns, id, flags, data)``: the loader marks the matching
        frames of ``bus`` with FLAG_TX."""
        topic = schema.INJECTED_PREFIX + bus
        for t, i, fl, data in frames:
            self._queue.append((topic, t, schema.encode_can(i, fl, data)))

    def injected_datagrams(self, net: str, src: str, datagrams: Iterable[tuple[int, str, int, bytes]]) -> None:
        """Record the datagrams the injector sent on network ``net`` from ``src``:
        ``(sent t_ns, address, port, payload)``."""
        topic = schema.NET_INJECTED_PREFIX + net
        for t, address, port, data in datagrams:
            self._queue.append((topic, t, schema.encode_datagram(src, f"{address}:{port}", data)))

    def harness(self, bus: str, kinds: dict[str, Any]) -> None:
        """Harness figures of ``bus`` measured outside the recorder, ``{kind: histogram JSON}`` (a
        network's: how late the injector's datagrams went out), in every ``harness`` event from now."""
        self._measured[bus] = kinds
        self._harness_event()

    # -- life cycle ------------------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # while another error (or Ctrl-C) unwinds, a bus that went down with it is no news
        self.close(raise_error=exc_type is None)

    def start(self) -> None:
        try:
            self._file = open(self.path, "wb")
        except OSError as exc:
            raise RecordingError(f"cannot write recording {self.path}: {exc.strerror}") from None
        self._writer = McapWriter(self._file, chunk_size=self._chunk_size, library=f"hil {__version__}")
        self._writer.start()
        clocks: dict[str, str] = {}
        try:
            for name in self._names:
                clocks[name] = self._open_bus(name)
        except BaseException:
            self._close_buses()
            self._file.close()
            raise
        self._writer.add_metadata(schema.METADATA_NAME, self._metadata_record(clocks))
        self._writer_thread = threading.Thread(target=self._write_loop, name="hil-recorder-writer",
                                               daemon=True)
        self._writer_thread.start()
        if self._emulated or self._clocks:
            self._threads.append(threading.Thread(target=self._harness_loop, name="hil-recorder-harness",
                                                  daemon=True))
        for t in self._threads:
            t.start()

    def close(self, raise_error: bool = True) -> None:
        """Stop the bus readers, write everything queued, finish the MCAP summary; then raise
        :class:`RecordingError` if a bus reader or the writer failed (unless ``raise_error`` is
        False)."""
        self._stop.set()
        for t in self._threads:
            t.join()
        if self._writer_thread is not None and (self._emulated or self._clocks or self._measured):
            self._harness_event()
        self._close_buses()
        if self._writer_thread is not None:
            self._closing.set()
            self._writer_thread.join()
            self._writer_thread = None
            assert self._writer is not None and self._file is not None  # start() opened them with the thread
            self._writer.finish()
            self._file.close()
        if self._error is not None and raise_error:
            raise RecordingError(f"recording {self.path} failed: {type(self._error).__name__}: {self._error}")

    # -- internals -------------------------------------------------------------------------------
    def _metadata_record(self, clocks: dict[str, str]) -> dict[str, str]:
        meta = {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in self._metadata.items()}
        started, epoch = now_ns(), epoch_offset_ns()
        meta.update({"hil_version": __version__, "host": socket.gethostname(),
                     "platform": platform.platform(), "python": platform.python_version(),
                     "clock": CLOCK_MODEL, "bus_clocks": json.dumps(clocks),
                     "started_ns": str(started), "epoch_offset_ns": str(epoch),
                     "started_unix_ns": str(started + epoch)})
        return meta

    def _rig(self) -> RigBuses:
        """The rig's buses, for what only a recorder given them does (open, check, report)."""
        assert self._buses is not None, "this recorder was given no buses"
        return self._buses

    def _open_bus(self, name: str) -> str:
        """Open bus ``name`` for listening; returns how its timestamps reach the run clock."""
        if getattr(self._rig().rig.buses.get(name), "kind", None) == "ethernet":
            return self._open_net(name)
        cfg = self._rig().can_config(name) if self._is_can(name) else None
        if cfg is None:
            port = self._rig().open_serial(name, side="host", timeout=_POLL_S)
            self._opened.append(port)
            self._threads.append(threading.Thread(target=self._read_serial, args=(name, port), daemon=True))
            return "serial: read time on the run clock"
        emulated = cfg.get("interface") == "simcan"
        if self._rig().rig.buses[name].emulated:  # also behind an emulated adapter: simbus measures the bus
            self._emulated.append(name)
        if emulated:  # every fault simbus injects on this bus is recorded as an event
            # hold=False: frames as they arrive (it keeps their end-of-frame stamps, so waiting for
            # each end of frame would only cost the controller CPU)
            bus = self._rig().open_can(name, fault_events=True, hold=False,
                                       on_fault_event=lambda e, bus_name=name: self.event(
                                           "fault", {"bus": bus_name, "kind": e.kind, "id": e.id,
                                                     "detail": e.detail}, e.t_ns))
        else:
            bus = self._rig().open_can(name)
        self._opened.append(bus)
        clock = None
        if not emulated:
            spec = self._rig().rig.buses[name]
            assert spec.kind == "can"  # cfg is a CAN bus's
            clock = self._clocks.setdefault(name, adapter_clock(spec, cfg, bus, self._opened))
        self._threads.append(threading.Thread(target=self._read_can, args=(name, bus, clock), daemon=True))
        return SIMBUS_CLOCK if clock is None else f"adapter ({cfg.get('interface')}): {clock.method}"

    def _is_can(self, name: str) -> bool:
        bus = self._rig().rig.buses.get(name)
        if bus is None:
            raise RecordingError(f"cannot record bus {name!r}: the rig has {', '.join(self._rig().rig.buses)}")
        return bus.kind == "can"

    def _read_can(self, name: str, bus: can.BusABC, clock: AdapterClock | None) -> None:
        topic = schema.CAN_PREFIX + name
        put = self._queue.append
        try:
            while not self._stop.is_set():
                msg = bus.recv(_POLL_S)
                if msg is None:
                    continue
                t = frame_ns(msg) if clock is None else clock.to_run_clock(msg.timestamp, now_ns())
                put((topic, t, schema.encode_can(msg.arbitration_id, message_flags(msg), bytes(msg.data),
                                                 msg.dlc if msg.is_remote_frame else None)))
        except Exception as exc:  # a bus that goes down ends the recording with an error, not silently
            self._error = exc

    def _open_net(self, name: str) -> str:
        """Listen on every port hil declares on network ``name``, at hil's address there."""
        from hil.net import plan
        from hil.net.udp import Listener

        net = plan(self._rig().rig)[name]
        hil = net.hil
        for port in hil.ports.values():
            try:
                listener = Listener(hil.address, port, net.interface)
            except OSError as exc:
                raise RecordingError(f"cannot listen on network {name!r} at {hil.address}:{port}: "
                                     f"{exc.strerror}") from None
            self._opened.append(listener)
            self._threads.append(threading.Thread(target=self._read_net, args=(name, listener), daemon=True))
        return "net: kernel arrival stamp (SO_TIMESTAMPNS) on the run clock"

    def _read_net(self, name: str, listener: Listener) -> None:
        topic, put = schema.NET_PREFIX + name, self._queue.append
        try:
            while not self._stop.is_set():
                got = listener.recv(_POLL_S)
                if got is not None:
                    put((topic, got[0], schema.encode_datagram(got[1], listener.dst, got[2])))
        except Exception as exc:
            self._error = exc

    def _harness_loop(self) -> None:
        while not self._stop.wait(HARNESS_EVERY_S):
            self._harness_event()

    def _harness_event(self) -> None:
        """One ``harness`` event: the broker's figures for every recorded emulated bus, and the
        adapter clock (method, error bound, drift) of every bus with adapter timestamps. A broker
        that has gone is the bus readers' news, not this event's."""
        from hil.errors import HilError

        try:
            buses = {name: self._rig().stats(name)["harness"] for name in self._emulated}
        except (HilError, KeyError):
            return
        buses.update(self._measured)
        clocks = {name: clock.summary() for name, clock in self._clocks.items()}
        self.event("harness", {"buses": buses, **({"clocks": clocks} if clocks else {})})

    def _read_serial(self, name: str, port: Serial) -> None:
        try:
            while not self._stop.is_set():
                data = port.read(max(1, port.in_waiting))
                if data:
                    self.serial(name, now_ns(), data)
        except Exception as exc:
            self._error = exc

    def _close_buses(self) -> None:
        for handle in self._opened:
            handle.close() if hasattr(handle, "is_open") else handle.shutdown()
        self._opened.clear()

    def _channel(self, topic: str) -> int:
        channel = self._channels.get(topic)
        if channel is None:
            assert self._writer is not None  # topics are written by the writer thread, which start() began
            title = schema.schema_for(topic)
            schema_id = self._schema_ids.get(title)
            if schema_id is None:
                schema_id = self._schema_ids[title] = self._writer.register_schema(
                    title, "jsonschema", schema.schema_bytes(title))
            channel = self._channels[topic] = self._writer.register_channel(topic, "json", schema_id)
        return channel

    def _write_loop(self) -> None:
        """Drain the queue in batches; close a chunk and flush the file every flush interval."""
        writer, q, counts, channel = self._writer, self._queue, self.counts, self._channel
        assert writer is not None  # start() made it before this thread
        interval = int(self._flush_interval * 1e9)
        next_flush = now_ns() + interval
        try:
            while True:
                if not q:
                    if self._closing.is_set():  # set after the readers stopped: nothing more comes
                        return
                    time.sleep(_IDLE_S)
                while q:
                    topic, t, payload = q.popleft()
                    writer.add_message(channel(topic), t, payload)
                    counts[topic] += 1
                if now_ns() >= next_flush:
                    writer.flush()
                    next_flush = now_ns() + interval
        except Exception as exc:
            self._error = exc
