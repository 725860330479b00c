"""Ready conditions and consoles on a rig's real emulated buses (simbus broker, pty pairs)."""

from __future__ import annotations

import re
import textwrap

import pytest

from hil.buses import RigBuses
from hil.errors import TargetTimeoutError
from hil.targets import create_target

SENDER = textwrap.dedent("""\
    import time, can
    from hil.buses import bus_from_env
    bus = bus_from_env("chassis")
    print("heartbeat starting", flush=True)
    speed = 0
    while True:
        bus.send(can.Message(arbitration_id=0x7F0, data=[0, 0], is_extended_id=False))
        bus.send(can.Message(arbitration_id=0x100, data=[speed, 0], is_extended_id=False))
        speed = min(speed + 10, 250)
        time.sleep(0.02)
""")

DBC = textwrap.dedent("""\
    VERSION ""
    NS_ :
    BS_:
    BU_: HPC
    BO_ 256 Status: 2 HPC
     SG_ Speed : 0|8@1+ (1,0) [0|255] "km/h" HPC
     SG_ Mode : 8|8@1+ (1,0) [0|255] "" HPC
""")


@pytest.fixture
def rig_on_buses(sf, tmp_path):
    sf.rig_doc["targets"]["hpc"]["buses"] = ["chassis"]
    sf.rig_doc["buses"]["hpc-console"] = {"kind": "serial", "emulated": True}
    sf.rig_doc["targets"]["hpc"]["console"] = "hpc-console"
    rig = sf.rig()
    with RigBuses(rig, tmp_path / "run") as buses:
        yield rig, buses


def _target(rig, buses, tmp_path, lines):
    return create_target("hpc", rig.targets["hpc"], rig, buses, tmp_path / "run", lines.append)


def test_frame_ready_with_a_dbc_signal_condition(sf, tmp_path, rig_on_buses):
    rig, buses = rig_on_buses
    sf.file("sender.py", SENDER)
    sf.file("status.dbc", DBC)
    stack = sf.stack({"ecu": {"files": ["sender.py"], "argv": ["{python}", "sender.py"], "ready": {
        "frame": {"bus": "chassis", "message": "Status", "signal": "Speed", "op": ">=", "value": 100},
        "dbc": "status.dbc", "timeout": "60s"}}})
    lines = []
    with _target(rig, buses, tmp_path, lines) as target:
        target.deploy(sf.components(stack))
        target.start()
        target.wait_ready()
        probe = buses.open_can("chassis")
        try:
            seen = [probe.recv(30) for _ in range(6)]
        finally:
            probe.shutdown()
        speeds = [m.data[0] for m in seen if m is not None and m.arbitration_id == 0x100]
        assert speeds and min(speeds) >= 100  # ready came only once the condition held
    assert any(l.text == "heartbeat starting" for l in lines)


def test_frame_that_never_comes_times_out_naming_the_frame(sf, tmp_path, rig_on_buses):
    rig, buses = rig_on_buses
    sf.file("sender.py", SENDER)
    stack = sf.stack({"ecu": {"files": ["sender.py"], "argv": ["{python}", "sender.py"], "ready": {
        "frame": {"bus": "chassis", "id": "0x7F1"}, "timeout": "1s"}}})
    with _target(rig, buses, tmp_path, []) as target:
        target.deploy(sf.components(stack))
        target.start()
        assert target.log.find("ecu", re.compile("heartbeat starting"), 0, 60) is not None
        with pytest.raises(TargetTimeoutError, match="(?s)expected frame 0x7f1 on bus 'chassis', none came"
                                                     ".*\\| heartbeat starting"):
            target.wait_ready()


def test_serial_console_of_an_hpc_is_captured(sf, tmp_path, rig_on_buses):
    rig, buses = rig_on_buses
    stack = sf.stack({"idle": {"argv": ["sleep", "600"]}})
    lines = []
    with _target(rig, buses, tmp_path, lines) as target:
        target.deploy(sf.components(stack))
        device = buses.open_serial("hpc-console", side="device")
        try:
            device.write(b"U-Boot 2024.01\r\nStarting kernel ...\r\n")
            device.flush()
            got = target.log.find("hpc-console", re.compile("Starting kernel"), 0, 30)
        finally:
            device.close()
        assert got is not None and got.stream == "serial"
    assert [l.text for l in lines if l.source == "hpc-console"][:2] == ["U-Boot 2024.01", "Starting kernel ..."]
