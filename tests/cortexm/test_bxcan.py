"""bxCAN as a node on an emulated bus (simbus): filters and FIFOs with their match indices,
transmit priority among mailboxes, and the error counters up to bus-off under corrupted frames."""

from __future__ import annotations

import time

import can
import pytest

from hil.buses import RigBuses
from hil.clock import frame_ns, now_ns, unix_seconds
from hil.cortexm.core import MAX_LAG_NS
from hil.harness import ErrorHistogram
from hil.simbus.plugin import SimMessage
from hil.simbus.wire import WireModel
from hil.spec.rig import Rig


@pytest.fixture
def chassis(tmp_path):
    rig = Rig.model_validate({"name": "t", "buses": {"chassis": {"kind": "can", "emulated": True, "bitrate": 500000}}})
    with RigBuses(rig, tmp_path / "run") as buses:
        yield buses


def node(buses: RigBuses, run_image, elf):
    """The machine on the bus as the MCU process puts it there: own echoes and fault events on."""
    holder = {}
    bus = buses.open_can("chassis", receive_own_messages=True, fault_events=True,
                         on_fault_event=lambda e: holder["run"].machine.fault_event(e.kind, e.id, e.t_ns))
    run = holder["run"] = run_image(elf, can_bus=bus)
    notifier = can.Notifier(bus, [run.machine.receive], timeout=0.1)
    return run, bus, notifier


def frames(bus: can.BusABC, count: int, timeout_s: float = 30.0) -> list[can.Message]:
    out, end = [], time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < end:
        msg = bus.recv(0.1)
        if msg is not None and not msg.is_error_frame:
            out.append(msg)
    return out


def test_filters_fifos_and_transmit_priority(chassis, run_image, programs):
    tester = chassis.open_can("chassis")
    run, bus, notifier = node(chassis, run_image, programs / "echo.elf")
    try:
        run.wait_for(r"echo: ready")
        # queued in initialisation mode, they leave by identifier, not by mailbox or request order
        assert [m.arbitration_id for m in frames(tester, 3)] == [0x010, 0x400, 0x7F0]
        for ident in (0x100, 0x101, 0x205, 0x215, 0x500):
            tester.send(can.Message(arbitration_id=ident, is_extended_id=False, data=bytes([ident & 0xFF, 7])))
        got = frames(tester, 3)
        assert [(m.arbitration_id, bytes(m.data)) for m in got] == [
            (0x300, b"\x00\x07"),  # list filter, FIFO 0, match index 0
            (0x301, b"\x01\x07"),  # the second identifier of the list bank: index 1
            (0x310, b"\x05\x07"),  # mask filter 0x200..0x20F, FIFO 1, index 0 there
        ]
        assert frames(tester, 1, timeout_s=0.5) == []  # 0x215 and 0x500 pass no filter
    finally:
        notifier.stop()
        bus.shutdown()
        tester.shutdown()


def test_corrupted_transmissions_raise_tec_to_bus_off(chassis, run_image, programs):
    tester = chassis.open_can("chassis")
    run, bus, notifier = node(chassis, run_image, programs / "echo.elf")
    try:
        run.wait_for(r"echo: ready")
        frames(tester, 3)
        chassis.faults("chassis").arm({"kind": "corrupt", "ids": [0x300]})
        tester.send(can.Message(arbitration_id=0x100, is_extended_id=False, data=b"\x01"))
        end = time.monotonic() + 30
        while "hil: can1: bus-off (transmit error counter over 255)" not in run.diagnostics:
            assert time.monotonic() < end, run.diagnostics
            time.sleep(0.05)
        run.machine.console_input(b"?")
        tec, rec, esr = run.wait_for(r"echo: tec (\d+) rec (\d+) esr ([0-9a-f]+)\r\n").groups()
        assert int(esr, 16) & 0x7 == 0x7  # error warning, error passive, bus-off
        assert int(esr, 16) >> 4 & 7 == 5  # last error: bit dominant error (the transmitter's view)
        assert int(tec) == 255
    finally:
        notifier.stop()
        bus.shutdown()
        tester.shutdown()


def test_the_machines_own_lateness_is_measured(chassis, run_image, brake_build):
    # The core runs ahead of the run clock for a timer event, and a host can hold it back: neither
    # may vanish. Driven on a stopped machine so the state is exactly the one described.
    tester = chassis.open_can("chassis")
    run, bus, notifier = node(chassis, run_image, brake_build / "brake_ecu.elf")
    try:
        run.wait_for(r"brake: ready")
        run.close()
        notifier.stop()
        machine, harness = run.machine, bus.harness
        count, total = harness.count, harness.sum_ns
        # a request that ended 0.5 ms before the core time it is taken at (the core ran ahead)
        begin = now_ns()
        machine.floor = begin + 500_000
        machine.offset = 0
        request = SimMessage(arbitration_id=0x110, is_extended_id=False, data=bytes(8),
                             timestamp=unix_seconds(machine.floor - 500_000))
        request.run_ns = machine.floor - 500_000  # as simcan gives it
        machine.receive(request)
        machine._inputs()
        # 0.5 ms; more only if the host held this test past the floor (core time is then the run clock)
        most = max(500_000, now_ns() - begin) + 20_000
        assert harness.count == count + 1 and 500_000 <= harness.sum_ns - total <= most
        count, total = harness.count, harness.sum_ns
        # a frame the firmware sends while the host holds the core 2 ms behind the run clock: on the
        # wire where the core wrote it (the wire was free then), and the broker's send error says
        # how late it really came
        machine.floor, machine.offset = 0, -2_000_000
        machine.can1.fifo[0].clear()
        machine.can1.write(0x184, 1, 0xFFFF_FFFF)  # TX mailbox 0: one byte
        written = now_ns()
        machine.can1.write(0x180, 0x7AB << 21 | 1, 0xFFFF_FFFF)  # identifier 0x7AB, TXRQ
        sent = iter(lambda: tester.recv(5), None)  # past the status frames of before, to ours (or none in 5 s)
        ours = next((m for m in sent if m.arbitration_id == 0x7AB), None)
        assert ours is not None
        assert frame_ns(ours) - WireModel(500_000).timing(0x7AB, 0, 1, b"\x00")[1] < written - 1_000_000
        send = ErrorHistogram.from_json(chassis.stats("chassis")["harness"]["send"])
        assert send.max_ns >= 2_000_000
    finally:
        notifier.stop()
        bus.shutdown()
        tester.shutdown()


def test_a_core_the_host_held_back_loses_no_time(chassis, run_image, brake_build):
    # The host keeps an awake core off the CPU: core time stands still meanwhile (its timers do not
    # run past events it has not taken: a 1 kHz tick is not lost); held back beyond MAX_LAG_NS it
    # skips ahead, and the skip is counted as its lateness. Driven on a stopped machine, as a stall
    # cannot be made to order.
    run, bus, notifier = node(chassis, run_image, brake_build / "brake_ecu.elf")
    try:
        run.wait_for(r"brake: ready")
        run.close()
        notifier.stop()
        machine = run.machine
        machine.floor, machine.offset = 0, 0
        start, cpu = now_ns() - 5_000_000, time.thread_time_ns()
        machine._awake = (start, cpu)  # as if 5 ms off the CPU
        machine.held_back()
        used = time.thread_time_ns() - cpu  # on the CPU since: that time the core ran
        # core time stood still meanwhile: for those 5 ms (less what this thread ran since), and for
        # no longer than the test has taken (a busy host may hold this thread off the CPU too)
        lag = now_ns() - machine.now()
        assert 5_000_000 - used <= lag <= now_ns() - start
        count, total = bus.harness.count, bus.harness.sum_ns
        machine._awake = (now_ns() - MAX_LAG_NS - 20_000_000, time.thread_time_ns())
        machine.held_back()
        assert machine.offset == -MAX_LAG_NS
        assert bus.harness.count == count + 1 and bus.harness.sum_ns - total >= 20_000_000
    finally:
        notifier.stop()
        bus.shutdown()


def test_mailboxes_complete_at_their_end_of_frame_not_at_the_hosts_echo(chassis, run_image, brake_build):
    """A board's bxCAN completes a mailbox when its frame ends on the wire. With no echo coming back
    at all (the longest a busy host can take), the 1 kHz status frame keeps leaving; completing on
    the echo, the three mailboxes filled with the first three frames and stayed full."""
    tester = chassis.open_can("chassis")
    bus = chassis.open_can("chassis", receive_own_messages=False)
    run = run_image(brake_build / "brake_ecu.elf", {"status_period": "1ms"}, can_bus=bus)
    try:
        run.wait_for(r"brake: ready")
        end, status = time.monotonic() + 0.5, []
        while time.monotonic() < end:
            msg = tester.recv(0.1)
            if msg is not None and msg.arbitration_id == 0x112:
                status.append(msg)
        assert len(status) > 100  # on the echo, three (then no mailbox was ever empty again)
        assert len(run.machine.can1.unconfirmed) <= 32  # news that never comes is not kept for ever
    finally:
        run.close()
        bus.shutdown()
        tester.shutdown()
