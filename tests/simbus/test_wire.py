"""The wire model: frame lengths against a bit-by-bit reference, arbitration, spacing, timed release."""

from __future__ import annotations

import random

import can
import pytest

from hil.simbus.protocol import F_EXTENDED, F_REMOTE
from hil.simbus.wire import WireModel, arbitration_key, frame_bits
from hil.clock import frame_ns, now_ns

LEAD = 1_000_000_000  # frames are handed over well before they are due, even on a busy machine


def _stuffed_length(bits: str) -> int:
    """Length of ``bits`` after bit stuffing, one bit at a time."""
    out, last, run = 0, None, 0
    for b in bits:
        out += 1
        run = run + 1 if b == last else 1
        last = b
        if run == 5:
            last = "1" if b == "0" else "0"
            out += 1
            run = 1
    return out


def _reference_fd_bits(can_id: int, ext: bool, brs: bool, data: bytes) -> int:
    """ISO 11898-1 CAN FD frame: dynamic stuffing to the end of the data, fixed-stuffed CRC field."""
    code = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64].index(len(data))
    if ext:
        arb = "0" + format(can_id >> 18, "011b") + "11" + format(can_id & 0x3FFFF, "018b") + "0"
    else:
        arb = "0" + format(can_id, "011b") + "0" + "0"
    bits = arb + "10" + ("1" if brs else "0") + "0" + format(code, "04b") + "".join(format(b, "08b") for b in data)
    crc = 17 if len(data) <= 16 else 21
    crc_field = 1 + 4 + crc + (4 + crc) // 4  # leading fixed stuff bit, stuff count, CRC, one every 4 bits
    return _stuffed_length(bits) + crc_field + 1 + 2 + 7 + 3


def _reference_classic_bits(can_id: int, ext: bool, rtr: bool, data: bytes) -> int:
    """ISO 11898-1 classic frame, built and stuffed one bit at a time (independent of hil.simbus.wire)."""
    dlc = format(len(data), "04b")
    if ext:
        bits = "0" + format(can_id >> 18, "011b") + "11" + format(can_id & 0x3FFFF, "018b") + ("1" if rtr else "0") + "00" + dlc
    else:
        bits = "0" + format(can_id, "011b") + ("1" if rtr else "0") + "00" + dlc
    if not rtr:
        bits += "".join(format(b, "08b") for b in data)
    crc = 0
    for b in bits:
        top = ((crc >> 14) & 1) ^ int(b)
        crc = (crc << 1) & 0x7FFF
        if top:
            crc ^= 0x4599
    bits += format(crc, "015b")
    return _stuffed_length(bits) + 1 + 2 + 7 + 3  # CRC delimiter, ACK slot + delimiter, EOF, intermission


def test_classic_frame_lengths_match_a_bit_by_bit_reference():
    rng = random.Random(3)
    for _ in range(500):
        ext = rng.random() < 0.5
        rtr = rng.random() < 0.1
        can_id = rng.randint(0, 0x1FFFFFFF if ext else 0x7FF)
        data = bytes(rng.choice([0, 0xFF, rng.randint(0, 255)]) for _ in range(rng.randint(0, 8)))
        flags = (F_EXTENDED if ext else 0) | (F_REMOTE if rtr else 0)
        assert frame_bits(can_id, flags, len(data), b"" if rtr else data) == (
            _reference_classic_bits(can_id, ext, rtr, data), 0)


def test_fd_frame_lengths_match_a_bit_by_bit_reference():
    rng = random.Random(5)
    for _ in range(300):
        ext, brs = rng.random() < 0.5, rng.random() < 0.5
        can_id = rng.randint(0, 0x1FFFFFFF if ext else 0x7FF)
        data = bytes(rng.choice([0, 0xFF, rng.randint(0, 255)]) for _ in range(rng.choice([0, 5, 8, 12, 20, 32, 64])))
        flags = 0x08 | (F_EXTENDED if ext else 0) | (0x10 if brs else 0)
        slow, fast = frame_bits(can_id, flags, len(data), data)
        assert slow + fast == _reference_fd_bits(can_id, ext, brs, data)
    # between two FD lengths the controller pads: 10 bytes take as long as 12
    assert frame_bits(0x1, 0x08, 10, bytes(10)) == frame_bits(0x1, 0x08, 12, bytes(12))


def test_known_lengths_and_fd_data_phase():
    # an 8-byte standard frame without stuff bits is 111 bits with intermission: 9,009 frames/s at 1 Mbit/s
    assert frame_bits(0x555, 0, 8, bytes([0x55] * 8))[0] >= 111
    assert frame_bits(0x000, 0, 8, bytes(8))[0] > frame_bits(0x555, 0, 8, bytes([0x55] * 8))[0]
    slow, fast = frame_bits(0x123, 0x08 | 0x10, 64, bytes(range(64)))
    assert slow < 40 and fast > 64 * 8  # with BRS only the arbitration and ACK/EOF run at the nominal rate
    model = WireModel(500_000, 2_000_000)
    assert model.timing(0x123, 0x08 | 0x10, 64, bytes(range(64)))[0] == round(slow * 2000 + fast * 500)
    assert WireModel(500_000, enabled=False).timing(0x123, 0, 8, bytes(8)) == (0, 0)


def test_arbitration_keys():
    std, ext, rtr = arbitration_key(0x100, 0), arbitration_key(0x100 << 18, F_EXTENDED), arbitration_key(0x100, F_REMOTE)
    assert arbitration_key(0x0FF, 0) < std < rtr < ext  # lower id; data beats remote; standard beats extended
    assert arbitration_key(0x7FF, 0x04) < arbitration_key(0, 0)  # error frames win outright


def _ns(msg: can.Message) -> int:
    return frame_ns(msg)


def test_two_pending_frames_lower_id_first_and_back_to_back(rig_buses):
    with rig_buses(chassis={"bitrate": 250_000}) as buses:
        a, b = buses.open_can("chassis"), buses.open_can("chassis")
        rx = buses.open_can("chassis")
        release = now_ns() + LEAD
        a.send_at(can.Message(arbitration_id=0x300, data=[1], is_extended_id=False), release)
        b.send_at(can.Message(arbitration_id=0x200, data=[2], is_extended_id=False), release)
        a.send_at(can.Message(arbitration_id=0x100 << 18, data=[3], is_extended_id=True), release)
        got = [rx.recv(10) for _ in range(3)]
        # 0x200 (b) wins over 0x300 (a's head); then a's queue keeps its order
        assert [m.arbitration_id for m in got] == [0x200, 0x300, 0x100 << 18]
        model = WireModel(250_000)
        first = model.timing(0x200, 0, 1, bytes([2]))
        assert _ns(got[0]) == release + first[1]
        for prev, cur in zip(got, got[1:]):
            duration = model.timing(cur.arbitration_id, F_EXTENDED if cur.is_extended_id else 0, cur.dlc, bytes(cur.data))[0]
            assert abs(_ns(cur) - _ns(prev) - duration) <= 2
        for bus in (a, b, rx):
            bus.shutdown()


def test_saturated_bus_spaces_frames_by_their_wire_time(rig_buses):
    with rig_buses(chassis={"bitrate": 1_000_000}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        release = now_ns() + LEAD
        rng = random.Random(1)
        sent = [can.Message(arbitration_id=rng.randint(0, 0x7FF), data=rng.randbytes(rng.randint(0, 8)),
                            is_extended_id=False) for _ in range(300)]
        for msg in sent:  # all released at once: the queue is never empty, the wire never idle
            tx.send_at(msg, release)
        got = [rx.recv(10) for _ in sent]
        assert [m.arbitration_id for m in got] == [m.arbitration_id for m in sent]
        model = WireModel(1_000_000)
        gaps = [_ns(cur) - _ns(prev) - model.timing(cur.arbitration_id, 0, cur.dlc, bytes(cur.data))[0]
                for prev, cur in zip(got, got[1:])]
        assert max(map(abs, gaps)) <= 2
        stats = buses.stats("chassis")
        assert stats["frames"] == 300 and stats["busy_ns"] >= 300 * 47_000
        tx.shutdown()
        rx.shutdown()


def test_timed_release_puts_the_frame_on_the_wire_then(rig_buses):
    with rig_buses(chassis={}) as buses:
        tx, rx = buses.open_can("chassis", receive_own_messages=True), buses.open_can("chassis")
        release = now_ns() + LEAD
        late = now_ns() - 1_000_000_000  # already past: goes out as soon as possible
        tx.send_at(can.Message(arbitration_id=0x10, data=[1], is_extended_id=False), release)
        msg = rx.recv(10)
        assert _ns(msg) == release + WireModel(500_000).timing(0x10, 0, 1, b"\x01")[1]
        assert _ns(tx.recv(10)) == _ns(msg)
        before = now_ns()
        tx.send_at(can.Message(arbitration_id=0x11, data=[], is_extended_id=False), late)
        assert _ns(rx.recv(10)) > before
        tx.shutdown()
        rx.shutdown()


@pytest.mark.parametrize("frames", [2000])
def test_without_wire_model_frames_arrive_in_order_stamped_at_receipt(rig_buses, frames):
    with rig_buses(chassis={"wire_model": False}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        start = now_ns()
        for i in range(frames):
            tx.send(can.Message(arbitration_id=i & 0x7FF, data=i.to_bytes(4, "big"), is_extended_id=False))
        got = [rx.recv(10) for _ in range(frames)]
        assert [int.from_bytes(m.data, "big") for m in got] == list(range(frames))
        stamps = [_ns(m) for m in got]
        assert stamps == sorted(stamps) and start <= stamps[0] and stamps[-1] <= now_ns()
        assert buses.stats("chassis")["busy_ns"] == 0
        tx.shutdown()
        rx.shutdown()
