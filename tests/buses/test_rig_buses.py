"""hil.buses: one way to open every bus of a rig, real or emulated, here and in child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from hil.buses import RigBuses, bus_from_env
from hil.errors import BusError, UsageError
from hil.spec.rig import Rig

CHILD = Path(__file__).with_name("child.py")


def _rig(**buses) -> Rig:
    return Rig.model_validate({"name": "t", "buses": buses})


def _child(buses: RigBuses, kind: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(CHILD), kind, name], env={**os.environ, **buses.env([name])},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_emulated_serial_link_between_host_and_a_child_device(tmp_path):
    rig = _rig(console={"kind": "serial", "emulated": True, "baudrate": 115200})
    with RigBuses(rig, tmp_path) as buses:
        host_path, device_path = buses.serial_port("console"), buses.serial_port("console", side="device")
        assert host_path != device_path and host_path.startswith("/dev/pts/")
        assert json.loads(buses.env(["console"])["HIL_BUSES"])["console"] == {"port": device_path, "baudrate": 115200}
        device = _child(buses, "serial", "console")
        host = buses.open_serial("console", timeout=30)
        assert host.baudrate == 115200
        for line in (b"hello\n", bytes(range(1, 10)) + b"\n", b"x" * 3000 + b"\n"):
            host.write(line)
            assert host.readline() == line.upper()
        host.write(b"quit\n")
        assert device.wait(30) == 0
        host.close()
        device.stdout.close()


def test_pacing_never_outruns_the_baud_rate(tmp_path):
    rig = _rig(slow={"kind": "serial", "emulated": True, "baudrate": 9600},
               fast={"kind": "serial", "emulated": True, "baudrate": 9600, "pace": False})
    payload = bytes(range(256)) * 2  # 512 bytes = 5120 bits: at least 0.53 s at 9600 baud
    with RigBuses(rig, tmp_path) as buses:
        for name, paced in (("slow", True), ("fast", False)):
            host, device = buses.open_serial(name, timeout=30), buses.open_serial(name, side="device", timeout=30)
            arrivals = []
            start = time.monotonic()
            device.write(payload)
            got = b""
            while len(got) < len(payload):
                got += host.read(1)
                arrivals.append(time.monotonic() - start)
            assert got == payload
            if paced:  # byte k cannot arrive before k+1 character times (10 bits each) have passed
                char = 10 / 9600
                assert all(t >= (k + 1) * char for k, t in enumerate(arrivals))
            host.close()
            device.close()


def test_a_flush_also_discards_the_bytes_the_paced_link_still_holds(tmp_path):
    rig = _rig(slow={"kind": "serial", "emulated": True, "baudrate": 9600})
    with RigBuses(rig, tmp_path) as buses:
        host, device = buses.open_serial("slow", timeout=30), buses.open_serial("slow", side="device", timeout=30)
        device.write(b"old" * 100)  # 300 bytes: 0.31 s on the line at 9600 baud
        assert host.read(3) == b"old"
        host.reset_input_buffer()  # what a console does before a reset: nothing of the old output after it
        time.sleep(0.05)  # the broker sees the flush before the next bytes (not a timing assertion)
        device.write(b"fresh\n")
        assert host.readline() == b"fresh\n"
        device.write(b"old" * 100)
        assert host.read(3) == b"old"
        device.reset_output_buffer()  # the sender drops what it has not sent yet
        time.sleep(0.05)
        device.write(b"fresh\n")
        line = host.readline()
        assert line.endswith(b"fresh\n") and len(line) < 100, line
        host.close()
        device.close()


def test_child_process_joins_an_emulated_can_bus_from_env(tmp_path):
    rig = _rig(chassis={"kind": "can", "emulated": True, "fd": True, "data_bitrate": 2_000_000})
    with RigBuses(rig, tmp_path) as buses:
        cfg = json.loads(buses.env(["chassis"])["HIL_BUSES"])["chassis"]
        assert cfg == buses.can_config("chassis") and cfg["interface"] == "simcan" and cfg["data_bitrate"] == 2_000_000
        echo = _child(buses, "can", "chassis")
        bus = buses.open_can("chassis")
        assert bus.protocol == can.CanProtocol.CAN_FD
        for i in range(10):
            bus.send(can.Message(arbitration_id=0x100 + 2 * i, data=[i], is_extended_id=False))
            reply = bus.recv(30)
            assert (reply.arbitration_id, bytes(reply.data)) == (0x101 + 2 * i, bytes([i]))
        bus.send(can.Message(arbitration_id=0x7FF, is_extended_id=False))
        assert echo.wait(30) == 0
        bus.shutdown()
        echo.stdout.close()


def test_real_buses_pass_straight_to_python_can_and_pyserial(tmp_path):
    rig = _rig(lab={"kind": "can", "interface": "virtual", "channel": "hil-test", "bitrate": 250_000,
                    "options": {"receive_own_messages": True}},
               uart={"kind": "serial", "port": "loop://", "baudrate": 57600})
    with RigBuses(rig, tmp_path) as buses:
        assert buses.can_config("lab") == {"interface": "virtual", "channel": "hil-test", "bitrate": 250_000,
                                           "fd": False, "receive_own_messages": True}
        assert not (tmp_path / "simbus").exists()  # nothing emulated: no broker
        bus = buses.open("lab")
        bus.send(can.Message(arbitration_id=0x42, data=[1]))
        assert bus.recv(5).arbitration_id == 0x42
        bus.shutdown()
        port = buses.open("uart", timeout=5)
        port.write(b"ping")
        assert port.read(4) == b"ping"
        port.close()
        # a component attached to a real serial bus (a UART of the HPC host) opens the port itself
        assert buses.serial_port("uart", side="device") == "loop://"
        assert json.loads(buses.env(["uart"], side="device")["HIL_BUSES"])["uart"]["port"] == "loop://"
        with pytest.raises(UsageError, match="only be injected on emulated buses"):
            buses.faults("lab")


def test_wrong_names_and_kinds_are_usage_errors(tmp_path):
    rig = _rig(chassis={"kind": "can", "emulated": True}, console={"kind": "serial", "emulated": True})
    with RigBuses(rig, tmp_path) as buses:
        with pytest.raises(UsageError, match="unknown bus 'nope'; the rig has: chassis, console"):
            buses.can_config("nope")
        with pytest.raises(UsageError, match="expected a CAN bus, but 'console' is a serial bus"):
            buses.open_can("console")
        with pytest.raises(UsageError, match="expected side 'host' or 'device'"):
            buses.serial_port("console", side="middle")
    with pytest.raises(BusError, match="not up"):
        buses.can_config("chassis")


def test_bus_from_env_errors_name_what_is_missing():
    with pytest.raises(BusError, match="HIL_BUSES is not set"):
        bus_from_env("chassis", env={})
    with pytest.raises(BusError, match="bus 'chassis' is not in HIL_BUSES; it has: body"):
        bus_from_env("chassis", env={"HIL_BUSES": json.dumps({"body": {"port": "loop://", "baudrate": 9600}})})
    with pytest.raises(BusError, match="cannot open serial port"):
        bus_from_env("x", env={"HIL_BUSES": json.dumps({"x": {"port": "/nonexistent/tty", "baudrate": 9600}})})


def test_socket_paths_are_absolute_even_for_a_relative_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with RigBuses(_rig(chassis={"kind": "can", "emulated": True}), Path("run")) as buses:
        channel = buses.can_config("chassis")["channel"]
        assert channel == str(tmp_path / "run" / "simbus" / "chassis.sock")


def test_a_real_bus_whose_driver_fails_is_a_bus_error(tmp_path):
    rig = _rig(brake={"kind": "can", "interface": "kvaser", "channel": 0})  # no Kvaser library here
    with RigBuses(rig, tmp_path) as buses:
        with pytest.raises(BusError, match=r"cannot open CAN bus 'brake' \(kvaser:0\): "):
            buses.open_can("brake")

