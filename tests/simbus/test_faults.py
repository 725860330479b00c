"""Each fault kind, from the rig (always armed) and at run time, and the events clients receive."""

from __future__ import annotations

import can
import pytest

from hil.clock import frame_ns, now_ns
from hil.errors import SpecError
from hil.simbus.wire import WireModel

MS = 1_000_000
LEAD = 1_000 * MS  # frames are handed over well before they are due, even on a busy machine


def _msg(can_id: int, *data: int) -> can.Message:
    return can.Message(arbitration_id=can_id, data=list(data), is_extended_id=False)


def _drain(bus, timeout: float = 0.5) -> list[can.Message]:
    """Frames until the bus has been quiet for ``timeout`` (the first may take up to 10 s)."""
    out = []
    while (m := bus.recv(timeout if out else 10)) is not None:
        out.append(m)
    return out


def _events(bus, kind: str) -> list:
    while bus.recv(0.05) is not None:  # events arrive in-band: read the socket so they are collected
        pass
    return [e for e in bus.fault_events if e.kind == kind]


def test_rig_drop_fault_by_id_is_always_armed_and_reported(rig_buses):
    with rig_buses(chassis={"faults": [{"kind": "drop", "ids": [0x100]}]}) as buses:
        tx = buses.open_can("chassis", receive_own_messages=True)
        rx = buses.open_can("chassis", fault_events=True)
        for can_id in (0x100, 0x200, 0x100, 0x201):
            tx.send(_msg(can_id, 1))
        assert [m.arbitration_id for m in _drain(rx)] == [0x200, 0x201]
        assert [m.arbitration_id for m in _drain(tx)] == [0x200, 0x201]  # no echo of a dropped frame
        drops = [e for e in rx.fault_events if e.kind == "drop"]
        assert [e.id for e in drops] == [0x100, 0x100]
        armed = rx.fault_events[0]  # armed before this node joined: told on joining
        assert armed.kind == "armed" and armed.detail["spec"]["kind"] == "drop" and armed.detail["end_ns"] is None
        assert buses.stats("chassis")["faulted"] == 2
        tx.shutdown()
        rx.shutdown()


def test_drop_probability_is_partial_and_every_drop_is_an_event(rig_buses):
    with rig_buses(chassis={"wire_model": False, "faults": [{"kind": "drop", "probability": 0.5}]}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis", fault_events=True)
        for i in range(400):
            tx.send(_msg(0x10, i & 0xFF))
        got = _drain(rx)
        drops = [e for e in rx.fault_events if e.kind == "drop"]
        assert 0 < len(got) < 400 and len(got) + len(drops) == 400
        tx.shutdown()
        rx.shutdown()


def test_delay_armed_at_run_time_shifts_the_frame(rig_buses):
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis", fault_events=True)
        control = buses.faults("chassis")
        fid = control.arm({"kind": "delay", "by": "40ms", "ids": [0x55]})
        assert [f["fault"] for f in control.armed()] == [fid]
        release = now_ns() + LEAD
        tx.send_at(_msg(0x55, 9), release)
        tx.send_at(_msg(0x56, 9), release + 1 * MS)
        got = [rx.recv(10), rx.recv(10)]
        eof = WireModel(500_000).timing(0x55, 0, 1, b"\x09")[1]
        assert [m.arbitration_id for m in got] == [0x56, 0x55]  # the delayed frame no longer blocks the queue
        assert frame_ns(got[1]) == release + 40 * MS + eof
        delays = _events(rx, "delay")
        assert [(e.id, e.detail["by_ns"]) for e in delays] == [(0x55, 40 * MS)]
        assert control.clear(fid) == [fid] and control.armed() == []
        assert len(_events(rx, "cleared")) == 1
        assert [e.kind for e in rx.fault_events if e.kind in ("armed", "cleared")] == ["armed", "cleared"]
        tx.shutdown()
        rx.shutdown()


def test_corrupt_frames_arrive_as_error_frames(rig_buses):
    with rig_buses(chassis={"faults": [{"kind": "corrupt", "ids": [0x300]}]}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis", fault_events=True)
        tx.send(_msg(0x300, 1, 2, 3))
        tx.send(_msg(0x301, 4))
        got = _drain(rx)
        assert [(m.arbitration_id, m.is_error_frame, len(m.data)) for m in got] == [(0x300, True, 0), (0x301, False, 1)]
        assert [e.id for e in rx.fault_events if e.kind == "corrupt"] == [0x300]
        assert buses.stats("chassis")["error_frames"] == 1
        tx.shutdown()
        rx.shutdown()


def test_bus_off_window_carries_nothing(rig_buses):
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis", fault_events=True)
        origin = now_ns() + LEAD
        buses.faults("chassis").arm({"kind": "bus_off", "start": "10ms", "end": "60ms"}, origin_ns=origin)
        for offset_ms, can_id in ((0, 0x1), (20, 0x2), (50, 0x3), (80, 0x4)):
            tx.send_at(_msg(can_id), origin + offset_ms * MS)
        assert [m.arbitration_id for m in _drain(rx)] == [0x1, 0x4]
        assert [e.id for e in rx.fault_events if e.kind == "bus_off"] == [0x2, 0x3]
        tx.shutdown()
        rx.shutdown()


def test_babbling_node_at_a_rate(rig_buses):
    with rig_buses(chassis={}) as buses:
        rx = buses.open_can("chassis")
        origin = now_ns() + LEAD
        buses.faults("chassis").arm({"kind": "babble", "id": 0x7F0, "rate": 1000, "end": "50ms", "dlc": 2},
                                    origin_ns=origin)
        got = _drain(rx)
        assert len(got) == 50 and {m.arbitration_id for m in got} == {0x7F0}
        assert all(len(m.data) == 2 for m in got)
        assert frame_ns(got[0]) - origin == WireModel(500_000).timing(0x7F0, 0, 2, b"\0\0")[1]
        rx.shutdown()


def test_saturating_babbler_wins_arbitration_for_its_window(rig_buses):
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        origin = now_ns() + LEAD
        buses.faults("chassis").arm({"kind": "babble", "id": 0x000, "start": "0ms", "end": "20ms"}, origin_ns=origin)
        tx.send_at(_msg(0x100, 1), origin + 5 * MS)
        got = _drain(rx)
        babble = [m for m in got if m.arbitration_id == 0]
        victim = [m for m in got if m.arbitration_id == 0x100]
        assert len(victim) == 1 and frame_ns(victim[0]) > origin + 20 * MS
        stamps = [frame_ns(m) for m in babble]
        model = WireModel(500_000)
        assert all(b - a == model.timing(0, 0, 8, bytes(m.data))[0] for a, b, m in zip(stamps, stamps[1:], babble[1:]))
        assert stamps[-1] < origin + 21 * MS
        tx.shutdown()
        rx.shutdown()


def test_invalid_fault_at_run_time_is_a_spec_error(rig_buses):
    with rig_buses(chassis={}) as buses:
        with pytest.raises(SpecError, match=r"bus chassis: invalid fault: drop.probability: Input should be less"):
            buses.faults("chassis").arm({"kind": "drop", "probability": 2})
