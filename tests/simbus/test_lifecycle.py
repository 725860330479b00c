"""Broker life cycle: private files, clean teardown, and clients that raise (never hang) when it dies."""

from __future__ import annotations

import os
import signal
import stat
import time

import can
import pytest

from hil.clock import frame_ns
from hil.errors import BusError


def test_run_folder_is_private_and_cleaned_up(rig_buses, tmp_path):
    with rig_buses(chassis={}, body={}) as buses:
        folder = tmp_path / "run" / "simbus"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        sockets = sorted(p.name for p in folder.glob("*.sock"))
        assert sockets == ["body.sock", "chassis.sock"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.glob("*.sock"))
        pid = buses._broker.info["pid"]
    assert not list(folder.glob("*.sock"))
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


@pytest.mark.timeout(60)
def test_clients_raise_when_the_broker_dies(rig_buses):
    with rig_buses(chassis={}) as buses:
        waiting = buses.open_can("chassis")
        sender = buses.open_can("chassis")
        buses._broker.proc.kill()
        buses._broker.proc.wait()
        with pytest.raises(can.CanOperationError, match="broker closed the connection"):
            waiting.recv()  # blocking forever would be the bug
        with pytest.raises(can.CanOperationError):
            for _ in range(3):
                sender.send(can.Message(arbitration_id=1, data=[1]))
        with pytest.raises(BusError, match="broker has died"):
            buses.can_config("chassis")
        waiting.shutdown()
        sender.shutdown()


def test_joining_a_bus_nobody_serves_is_an_init_error(tmp_path):
    with pytest.raises(can.CanInitializationError, match="cannot reach the simbus broker"):
        can.Bus(interface="simcan", channel=str(tmp_path / "nobody.sock"))


def test_long_socket_paths_work(rig_buses, tmp_path, monkeypatch):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    from hil.buses import RigBuses

    from .conftest import make_rig

    with RigBuses(make_rig(chassis={}), deep) as buses:
        assert len(buses.can_config("chassis")["channel"]) > 108
        a, b = buses.open_can("chassis"), buses.open_can("chassis")
        a.send(can.Message(arbitration_id=0x1, data=[7]))
        assert b.recv(10).data == bytearray([7])
        a.shutdown()
        b.shutdown()


def test_broker_ends_when_its_controller_is_killed(tmp_path):
    """The broker watches its stdin: a SIGKILLed controller leaves no broker behind."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time; from pathlib import Path\n"
        "from hil.buses import RigBuses\n"
        "from hil.spec.rig import Rig\n"
        "rig = Rig.model_validate({'name': 'k', 'buses': {'c': {'kind': 'can', 'emulated': True}}})\n"
        "buses = RigBuses(rig, Path(sys.argv[1])).__enter__()\n"
        "print(buses._broker.info['pid'], flush=True)\n"
        "time.sleep(600)\n")
    controller = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    broker_pid = int(controller.stdout.readline())
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    controller.stdout.close()
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{broker_pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{broker_pid}")
    assert not list(tmp_path.glob("simbus/*.sock"))  # it removed its sockets on the way out


def test_a_client_speaking_nonsense_is_dropped_and_the_bus_goes_on(rig_buses):
    import socket

    from hil.simbus.protocol import CONTROL, HEADER, HELLO, HELLO_NO_FRAMES

    with rig_buses(chassis={}) as buses:
        path = buses.can_config("chassis")["channel"]
        confused = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        confused.connect(path)
        confused.send(HEADER.pack(HELLO, HELLO_NO_FRAMES, 0, 0, 0))
        assert confused.recv(100)[0] == HELLO
        confused.send(HEADER.pack(CONTROL, 0, 0, 0, 0) + b"{not json")
        assert b"unknown control op" in confused.recv(1000)
        confused.send(b"\x01\x02")  # shorter than a header: the broker hangs up
        assert confused.recv(100) == b""
        confused.close()
        a, b = buses.open_can("chassis"), buses.open_can("chassis")
        a.send(can.Message(arbitration_id=0x9, data=[9]))
        assert b.recv(10).arbitration_id == 0x9
        a.shutdown()
        b.shutdown()


def test_a_second_broker_on_the_same_folder_is_refused(rig_buses, tmp_path):
    from hil.buses import RigBuses

    from .conftest import make_rig

    with rig_buses(chassis={}) as buses:
        with pytest.raises(BusError, match="another simbus broker already serves .*chassis.sock"):
            RigBuses(make_rig(chassis={}), tmp_path / "run").__enter__()
        a, b = buses.open_can("chassis"), buses.open_can("chassis")  # the first one is untouched
        a.send(can.Message(arbitration_id=0x3, data=[3]))
        assert b.recv(10).arbitration_id == 0x3
        a.shutdown()
        b.shutdown()


def test_ctrl_c_to_the_controllers_group_leaves_the_broker_to_the_controller(rig_buses):
    """A terminal's Ctrl-C reaches every process of the foreground group, the broker too; the
    controller tears the rig down in order, so the broker must not go first."""
    with rig_buses(chassis={}) as buses:
        os.kill(buses.broker_pid, signal.SIGINT)
        time.sleep(0.3)
        with buses.open_can("chassis", receive_own_messages=True) as node:
            node.send(can.Message(arbitration_id=0x10, data=[1], is_extended_id=False))
            echo = node.recv(10)
        assert echo is not None and echo.arbitration_id == 0x10


def test_no_frame_is_stamped_before_it_was_sent(rig_buses):
    """Each frame carries its send time; the broker stamps it when it read it, never earlier, even
    when it reads a batch of frames in one go."""
    with rig_buses(chassis={"wire_model": False}) as buses:
        with buses.open_can("chassis", receive_own_messages=True) as node:
            for _ in range(2000):
                node.send(can.Message(arbitration_id=0x20, data=time.monotonic_ns().to_bytes(8, "big"),
                                      is_extended_id=False))
            early = []
            for _ in range(2000):
                msg = node.recv(10)
                assert msg is not None
                sent = int.from_bytes(msg.data, "big")
                if frame_ns(msg) < sent - 100:
                    early.append(sent - frame_ns(msg))
        assert early == []


def test_a_node_that_closes_with_frames_unread_loses_none_it_sent(rig_buses):
    """A sender that never reads (can.player) closes with frames waiting for it: the kernel reports
    ECONNRESET before the frames it sent are read, and the broker took that for a disconnect,
    losing them."""
    with rig_buses(chassis={}) as buses:
        rx = buses.open_can("chassis")
        player = buses.open_can("chassis")
        other = buses.open_can("chassis")
        other.send(can.Message(arbitration_id=0x7, data=[7]))  # waits, unread, in the player's socket
        assert rx.recv(10).arbitration_id == 0x7
        os.kill(buses.broker_pid, signal.SIGSTOP)
        try:
            for i in range(5):
                player.send(can.Message(arbitration_id=0x100 + i, data=[i]))
            player.shutdown()
        finally:
            os.kill(buses.broker_pid, signal.SIGCONT)
        assert [rx.recv(10).arbitration_id for _ in range(5)] == [0x100 + i for i in range(5)]
        rx.shutdown()
        other.shutdown()
