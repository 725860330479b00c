"""The children that serve until their supervisor ends them, as real processes under the policy
their ``main`` installs (``signals.as_server``): SIGTERM ends each cleanly (exit 0, its files
removed); SIGINT — a terminal's Ctrl-C reaching the whole group — leaves the simbus broker and an
emulated adapter serving, and powers an emulated MCU off (its own session: a SIGINT there is meant)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import can
import pytest
import serial

from hil.buses import RigBuses
from hil.lifecycle.children import python_argv, spawn
from hil.spec.rig import Rig

pytestmark = pytest.mark.timeout(180)


def ended(proc: subprocess.Popen, sig: int) -> int:
    """Send ``sig`` and return the process's exit code (generous: the host is shared)."""
    os.kill(proc.pid, sig)
    return proc.wait(60)


def round_trip(channel: str) -> int:
    """The id of a frame sent by one simcan node and received by another on ``channel``."""
    with can.Bus(interface="simcan", channel=channel) as a, can.Bus(interface="simcan", channel=channel) as b:
        a.send(can.Message(arbitration_id=0x42, data=[1], is_extended_id=False))
        got = b.recv(10)
    return got.arbitration_id if got is not None else -1


def test_the_broker_ignores_sigint_and_ends_cleanly_on_sigterm(tmp_path):
    rig = Rig.model_validate({"name": "s", "buses": {"chassis": {"kind": "can", "emulated": True}}})
    with RigBuses(rig, tmp_path) as buses:
        proc, channel = buses._broker.proc, buses.can_config("chassis")["channel"]
        os.kill(proc.pid, signal.SIGINT)
        assert round_trip(channel) == 0x42 and proc.poll() is None
        assert ended(proc, signal.SIGTERM) == 0
        assert not Path(channel).exists()  # it removed its socket on the way out


def test_an_emulated_adapter_ignores_sigint_and_ends_cleanly_on_sigterm(tmp_path):
    rig = Rig.model_validate({"name": "s", "buses": {"chassis": {
        "kind": "can", "emulated": True, "interface": "slcan", "channel": "ttyACM0", "bitrate": 500000,
        "options": {"sleep_after_open": 0}}}})
    with RigBuses(rig, tmp_path) as buses:
        proc, path = buses._adapters["chassis"].proc, buses.can_config("chassis")["channel"]
        os.kill(proc.pid, signal.SIGINT)
        with serial.Serial(path, 115200, timeout=5) as port:
            port.write(b"V\r")
            assert port.read_until(b"\r") == b"V1013\r" and proc.poll() is None  # the device still answers
        assert ended(proc, signal.SIGTERM) == 0
        assert not Path(path).exists()  # it removed its device link on the way out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_emulated_mcu_powers_off_and_ends_cleanly(tmp_path, sig):
    (tmp_path / "mcu.json").write_text(json.dumps({"name": "m", "flash_path": str(tmp_path / "flash.bin"),
                                                   "work_dir": str(tmp_path)}))
    child = spawn(python_argv("hil.firmware", str(tmp_path / "mcu.json")), what="the emulated MCU",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        states = iter(child.proc.stdout.readline, "")
        assert any(json.loads(line).get("state") == "bootloader" for line in states)  # erased flash: it waits
        assert ended(child.proc, sig) == 0
        assert child.proc.stderr.read() == ""
    finally:
        child.stop(5.0)
        child.proc.stdout.close()
        child.proc.stderr.close()
