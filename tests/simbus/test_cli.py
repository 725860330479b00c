"""`hil simbus serve RIG` as a real process: it prints how to attach, serves, and stops on Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import can
import pytest

ROOT = Path(__file__).resolve().parents[2]


RIG = """\
name: served
buses:
  chassis: {kind: can, emulated: true}
  console: {kind: serial, emulated: true, baudrate: 9600}
  lab: {kind: can, interface: virtual, channel: elsewhere}
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_prints_attach_info_serves_and_stops_cleanly(tmp_path, sig):
    (tmp_path / "rig.yaml").write_text(RIG)
    folder = tmp_path / "sb"
    proc = subprocess.Popen([sys.executable, "-m", "hil", "--no-color", "simbus", "serve", str(tmp_path / "rig.yaml"),
                             "--dir", str(folder)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("simbus serving rig served")
        socket_path = str(folder / "chassis.sock")
        assert lines[1].strip() == f'can    chassis: can.Bus(interface="simcan", channel="{socket_path}")'
        assert lines[2].strip().startswith("serial console: host /dev/pts/")
        env = json.loads(shlex.split(lines[3].strip().removeprefix("export HIL_BUSES="))[0])
        assert env["chassis"] == {"interface": "simcan", "channel": socket_path}
        assert env["console"]["baudrate"] == 9600 and set(env) == {"chassis", "console"}
        a, b = can.Bus(**env["chassis"]), can.Bus(**env["chassis"])
        a.send(can.Message(arbitration_id=0x123, data=[1, 2]))
        assert b.recv(10).arbitration_id == 0x123
        a.shutdown()
        b.shutdown()
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "simbus stopped" and err == ""
    assert not os.path.exists(socket_path)


def test_serve_rejects_a_rig_without_emulated_buses(tmp_path):
    (tmp_path / "lab.yaml").write_text("name: lab\nbuses:\n  can0: {kind: can, interface: virtual, channel: x}\n")
    r = subprocess.run([sys.executable, "-m", "hil", "--no-color", "simbus", "serve", str(tmp_path / "lab.yaml")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: rig lab has no emulated buses: nothing to serve"
