"""Nodes in separate processes on one emulated bus: nothing lost, order kept, every frame kind."""

from __future__ import annotations

import json
import random

import can
import pytest

from hil.clock import frame_ns

from .conftest import frames_file, start_node


def _mixed_frames(n: int) -> list:
    """Classic and FD frames, 11- and 29-bit ids, every FD length, BRS on and off."""
    rng = random.Random(7)
    lengths = [0, 1, 8, 12, 16, 20, 24, 32, 48, 64]
    frames = []
    for i in range(n):
        fd = i % 3 == 0
        ext = i % 4 == 1
        size = rng.choice(lengths) if fd else rng.randint(0, 8)
        can_id = rng.randint(0, 0x1FFFFFFF if ext else 0x7FF)
        frames.append([can_id, ext, fd, fd and i % 2 == 0, rng.randbytes(size).hex()])
    return frames


def test_frames_cross_processes_in_order_at_saturation(rig_buses, tmp_path):
    sent = _mixed_frames(1500)
    with rig_buses(chassis={"fd": True, "bitrate": 1_000_000, "data_bitrate": 8_000_000}) as buses:
        listener = buses.open_can("chassis")
        receiver = start_node(buses, "recv", "chassis", str(len(sent)))
        assert receiver.stdout.readline().strip() == "ready"
        sender = start_node(buses, "send", "chassis", frames_file(tmp_path, sent))
        out, _ = receiver.communicate(timeout=120)
        assert sender.wait(60) == 0 and receiver.returncode == 0
        got = [json.loads(line) for line in out.splitlines()]
        assert [g[:5] for g in got] == sent
        stamps = [g[5] for g in got]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        # a third node (in this process) saw the same frames with the same end-of-frame times
        seen = [listener.recv(10) for _ in sent]
        assert [frame_ns(m) for m in seen] == stamps
        assert all(m.is_rx for m in seen)
        listener.shutdown()
        sender.stdout.close()


def test_receive_own_messages_echo_carries_the_same_timestamp(rig_buses):
    with rig_buses(chassis={}) as buses:
        me = buses.open_can("chassis", receive_own_messages=True)
        other = buses.open_can("chassis")
        quiet = buses.open_can("chassis")  # receive_own_messages off: no echo
        for i in range(5):
            me.send(can.Message(arbitration_id=0x10 + i, data=[i], is_extended_id=False))
            quiet.send(can.Message(arbitration_id=0x700, data=[i], is_extended_id=False))
        echoes = [me.recv(10) for _ in range(10)]
        seen = [other.recv(10) for _ in range(10)]
        assert [(m.arbitration_id, m.timestamp) for m in echoes] == [(m.arbitration_id, m.timestamp) for m in seen]
        assert [m.is_rx for m in echoes if m.arbitration_id < 0x700] == [False] * 5
        assert [m.is_rx for m in echoes if m.arbitration_id == 0x700] == [True] * 5
        assert [m.arbitration_id for m in (quiet.recv(10) for _ in range(5))] == [0x10, 0x11, 0x12, 0x13, 0x14]
        assert quiet.recv(0.2) is None
        for bus in (me, other, quiet):
            bus.shutdown()


def test_filters_remote_and_error_frames(rig_buses):
    with rig_buses(chassis={}) as buses:
        tx = buses.open_can("chassis")
        rx = buses.open_can("chassis", can_filters=[{"can_id": 0x100, "can_mask": 0x7F0, "extended": False}])
        everything = buses.open_can("chassis")
        tx.send(can.Message(arbitration_id=0x200, data=[1], is_extended_id=False))
        tx.send(can.Message(arbitration_id=0x105, is_remote_frame=True, dlc=6, is_extended_id=False))
        tx.send(can.Message(arbitration_id=0x10F, data=[2, 3], is_extended_id=False))
        tx.send(can.Message(arbitration_id=0x101, is_extended_id=True, data=[4]))  # extended: filtered out
        tx.send(can.Message(is_error_frame=True, arbitration_id=0x4, data=[]))
        got = [rx.recv(10) for _ in range(2)]
        assert [(m.arbitration_id, m.is_remote_frame, m.dlc) for m in got] == [(0x105, True, 6), (0x10F, False, 2)]
        assert rx.recv(0.2) is None
        kinds = [everything.recv(10) for _ in range(5)]
        # the error frame won arbitration over nothing pending; order per sender is kept
        assert [m.arbitration_id for m in kinds] == [0x200, 0x105, 0x10F, 0x101, 0x4]
        assert kinds[-1].is_error_frame and kinds[3].is_extended_id
        for bus in (tx, rx, everything):
            bus.shutdown()


def test_recv_timeout_returns_none_and_notifier_uses_fileno(rig_buses):
    import asyncio

    with rig_buses(chassis={}) as buses:
        tx = buses.open_can("chassis")
        rx = buses.open_can("chassis")
        assert rx.recv(0.05) is None

        async def collect():
            reader = can.AsyncBufferedReader()
            notifier = can.Notifier(rx, [reader], loop=asyncio.get_running_loop())
            for i in range(20):
                tx.send(can.Message(arbitration_id=i, data=[i], is_extended_id=False))
            out = [await asyncio.wait_for(reader.get_message(), 10) for _ in range(20)]
            notifier.stop()
            return out

        got = asyncio.run(collect())
        assert [m.arbitration_id for m in got] == list(range(20))
        tx.shutdown()
        rx.shutdown()


def test_frames_the_bus_cannot_carry_are_refused(rig_buses):
    with rig_buses(chassis={}) as buses:
        bus = buses.open_can("chassis")
        with pytest.raises(can.CanOperationError, match="cannot go on this classic CAN bus"):
            bus.send(can.Message(arbitration_id=1, is_fd=True, data=bytes(12)))
        with pytest.raises(can.CanOperationError, match="at most 8 data bytes in a classic frame, got 9"):
            bus.send(can.Message(arbitration_id=1, data=bytes(9), check=False))
        bus.shutdown()


def test_send_periodic_and_fd_flags(rig_buses):
    with rig_buses(chassis={"fd": True}) as buses:
        tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
        task = tx.send_periodic(can.Message(arbitration_id=0x321, data=[1, 2], is_extended_id=False), 0.01)
        got = [rx.recv(10) for _ in range(5)]
        task.stop()
        assert {m.arbitration_id for m in got} == {0x321}
        stamps = [m.timestamp for m in got]
        assert stamps == sorted(stamps)
        tx.send(can.Message(arbitration_id=0x5, is_fd=True, bitrate_switch=True, error_state_indicator=True,
                            data=bytes(range(48)), is_extended_id=False))
        while (m := rx.recv(10)).arbitration_id != 0x5:
            pass
        assert (m.is_fd, m.bitrate_switch, m.error_state_indicator, bytes(m.data)) == (True, True, True, bytes(range(48)))
        tx.send(can.Message(arbitration_id=0x6, is_fd=True, data=bytes([9] * 10), is_extended_id=False))
        assert bytes(rx.recv(10).data) == bytes([9] * 10) + bytes(2)  # padded to the next FD length, 12
        tx.shutdown()
        rx.shutdown()


def test_a_full_transmit_queue_holds_the_sender_back(rig_buses):
    from hil.clock import now_ns
    from hil.simbus.bus import TX_QUEUE_LIMIT

    with rig_buses(chassis={}) as buses:
        tx = buses.open_can("chassis")
        # a frame due in a minute heads the queue: nothing behind it can leave meanwhile
        tx.send_at(can.Message(arbitration_id=0x1, data=[0], is_extended_id=False), now_ns() + 60_000_000_000)
        queued = 0
        with pytest.raises(can.CanOperationError, match="transmit queue full"):
            while queued < 100 * TX_QUEUE_LIMIT:
                tx.send(can.Message(arbitration_id=0x2, data=[1], is_extended_id=False), timeout=0.5)
                queued += 1
        assert TX_QUEUE_LIMIT <= queued < 100 * TX_QUEUE_LIMIT  # the broker's queue, then the socket's
        tx.shutdown()
