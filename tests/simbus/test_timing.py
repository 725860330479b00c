"""Stamps as hardware gives them (from the node's send time) and delivery at the end of frame."""

from __future__ import annotations

import os
import signal
import time

import can

from hil.clock import frame_ns, now_ns
from hil.harness import ErrorHistogram
from hil.simbus.wire import WireModel

MS = 1_000_000


def _msg(can_id: int, *data: int) -> can.Message:
    return can.Message(arbitration_id=can_id, data=list(data), is_extended_id=False)


def test_stamps_follow_the_send_times_while_the_broker_is_stopped(rig_buses):
    """Frames written while the broker cannot read them are still placed at their send times (it
    read them all at once afterwards: stamping at reading put them back to back)."""
    with rig_buses(chassis={"bitrate": 500_000}) as buses:
        tx, rx = buses.open_can("chassis", receive_own_messages=True), buses.open_can("chassis")
        eof = WireModel(500_000).timing(0x10, 0, 1, b"\x00")[1]
        windows = []
        os.kill(buses.broker_pid, signal.SIGSTOP)
        try:
            for i in range(5):
                before = now_ns()
                tx.send(_msg(0x10, i))
                windows.append((before, now_ns()))
                time.sleep(0.005)
        finally:
            os.kill(buses.broker_pid, signal.SIGCONT)
        got = [rx.recv(10) for _ in windows]
        echoes = [tx.recv(10) for _ in windows]
        for (before, after), msg, echo in zip(windows, got, echoes):
            stamp = frame_ns(msg)
            assert before + eof <= stamp <= after + eof
            assert echo.timestamp == msg.timestamp
        assert buses.stats("chassis")["displaced"] == 0
        tx.shutdown()
        rx.shutdown()


def test_recv_hands_a_frame_out_at_its_end_of_frame_not_before(rig_buses):
    """At 10 kbit/s a frame takes about 11 ms: the broker forwards it when it starts, the node
    holds it until its end of frame."""
    with rig_buses(chassis={"bitrate": 10_000}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        for _ in range(5):
            tx.send_at(_msg(0x20, *bytes(8)), now_ns() + 100 * MS)
            msg = rx.recv(10)
            returned = now_ns()
            assert returned >= frame_ns(msg)
        assert rx.harness.count == 5 and rx.harness.early == 0
        tx.shutdown()
        rx.shutdown()


def test_a_node_that_does_not_hold_gets_frames_as_they_come_and_measures_nothing(rig_buses):
    with rig_buses(chassis={"bitrate": 10_000, "fd": True}) as buses:
        tx, logger = buses.open_can("chassis"), buses.open_can("chassis", hold=False)
        tx.send(can.Message(arbitration_id=0x21, data=bytes(64), is_fd=True, is_extended_id=False))
        msg = logger.recv(10)
        assert now_ns() < frame_ns(msg)  # its 70 ms of wire time are not over yet
        assert logger.harness.count == 0
        tx.shutdown()
        logger.shutdown()


def test_a_frame_waiting_when_recv_is_called_is_handed_out_at_once(rig_buses):
    """The delivery error counts from when the application asked, not from the end of frame: a
    busy application's own delay is not the harness's."""
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        tx.send(_msg(0x30, 1))
        time.sleep(0.5)
        assert rx.recv(10).arbitration_id == 0x30
        assert rx.harness.count == 1 and rx.harness.max_ns < 400 * MS
        tx.shutdown()
        rx.shutdown()


def test_a_late_release_goes_out_from_when_it_was_written(rig_buses):
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        before = now_ns()
        tx.send_at(_msg(0x40, 1), before - 1_000 * MS)
        after = now_ns()
        eof = WireModel(500_000).timing(0x40, 0, 1, b"\x01")[1]
        assert before + eof <= frame_ns(rx.recv(10)) <= after + eof
        tx.shutdown()
        rx.shutdown()


def test_a_frame_written_in_the_past_is_placed_then_and_its_lateness_is_the_send_error(rig_buses):
    """``send_written``: an emulated core that trailed the run clock gives the time it wrote the
    frame; on a free wire the frame goes there (not from when the broker read it), and the broker's
    send error says how late it came."""
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis", hold=False)
        written = now_ns() - 20 * MS
        tx.send_written(_msg(0x41, 1), written)
        eof = WireModel(500_000).timing(0x41, 0, 1, b"\x01")[1]
        assert frame_ns(rx.recv(10)) == written + eof
        send = ErrorHistogram.from_json(buses.stats("chassis")["harness"]["send"])
        assert send.count == 1 and send.max_ns >= 20 * MS
        tx.shutdown()
        rx.shutdown()


def test_a_frame_read_after_its_slot_was_given_away_is_displaced(rig_buses):
    """Node a writes a frame while the broker is stopped; node b's frame, written later, is read
    and committed first (a is read only after a long pause): a's frame goes out at the next free
    slot and is counted."""

    from hil.simbus.protocol import FRAME, HEADER, HELLO, MAX_RECORD, connect

    with rig_buses(chassis={}) as buses:
        path = buses.can_config("chassis")["channel"]
        rx = buses.open_can("chassis")
        a = connect(path)
        a.setblocking(True)
        a.send(HEADER.pack(HELLO, 0, 0, 0, 0))
        a.recv(MAX_RECORD)
        b = buses.open_can("chassis")
        stamp_a = now_ns()
        b.send(_msg(0x200, 2))  # read and committed first
        assert rx.recv(10).arbitration_id == 0x200
        a.send(HEADER.pack(FRAME, 0, 1, 0x100, stamp_a) + b"\x01")  # stamped before b's frame
        late = rx.recv(10)
        assert late.arbitration_id == 0x100 and buses.stats("chassis")["displaced"] == 1
        a.close()
        b.shutdown()
        rx.shutdown()


def test_frames_written_before_a_slot_compete_for_it_until_its_horizon():
    """The broker's bus in-process, on a clock the test sets: a frame read after another but
    written before it (within the commit horizon) still takes the slot first."""
    import socket

    from hil.simbus.bus import Client, SimBus
    from hil.simbus.faults import FaultSet
    from hil.simbus.protocol import FRAME, HEADER, HELLO

    model = WireModel(1_000_000)
    bus = SimBus("chassis", "unused", model, FaultSet(), fd=False)
    ends = {}
    for name in ("a", "b", "rx"):
        ours, broker_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        broker_side.setblocking(False)
        client = Client(broker_side)
        bus.clients.append(client)
        ours.send(HEADER.pack(HELLO, 0, 0, 0, 0))
        bus.receive(client, 0)
        ours.recv(100)  # the welcome
        ends[name] = (ours, client)
    s = now_ns() + 10_000_000_000  # release times well ahead: no send error, the test sets the clock
    (a, ca), (b, cb), (rx, _) = ends["a"], ends["b"], ends["rx"]
    a.send(HEADER.pack(FRAME, 0, 1, 0x300, s) + b"\x03")
    bus.receive(ca, 0)
    assert bus.advance(s + 1_000) == s + bus.horizon  # the slot at s is not decided yet
    b.send(HEADER.pack(FRAME, 0, 1, 0x100, s - 5_000) + b"\x01")  # written before s, read after it
    bus.receive(cb, 0)
    bus.advance(s + bus.horizon + 1_000)
    first = HEADER.unpack_from(rx.recv(100))
    second_eof = s - 5_000 + model.timing(0x100, 0, 1, b"\x01")[0] + model.timing(0x300, 0, 1, b"\x03")[1]
    assert (first[3], first[4]) == (0x100, s - 5_000 + model.timing(0x100, 0, 1, b"\x01")[1])
    bus.advance(second_eof)
    second = HEADER.unpack_from(rx.recv(100))
    assert (second[3], second[4]) == (0x300, second_eof)
    assert bus.stats["displaced"] == 0
    for ours, client in ends.values():
        ours.close()
        client.sock.close()


def test_the_time_a_node_spends_reporting_its_harness_is_part_of_the_delivery_it_measures(rig_buses, monkeypatch):
    """Every 0.25 s recv also sends the node's histogram to the broker (about 0.1 ms of JSON): the
    frame it hands out then is that much later, and the node must count it (an outside log of the
    stack's recv times found frames later than any delivery error hil had reported)."""
    from hil.harness import ErrorHistogram

    slow = ErrorHistogram.to_json
    monkeypatch.setattr(ErrorHistogram, "to_json", lambda self: (time.sleep(0.02), slow(self))[1])
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        outside = []
        for i in range(3):  # a report is due 0.25 s after the node joined, and each 0.25 s after
            time.sleep(0.15)
            tx.send(_msg(0x40, i))
            entered = now_ns()
            msg = rx.recv(10)
            outside.append(now_ns() - max(entered, frame_ns(msg)))
        assert max(outside) >= 20 * MS  # the report delayed a frame
        assert rx.harness.max_ns >= max(outside) - 1 * MS  # and the node counted it
        tx.shutdown()
        rx.shutdown()
