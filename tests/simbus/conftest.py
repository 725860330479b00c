"""Fixtures for simbus tests: a small emulated rig brought up in a temporary run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.buses import RigBuses
from hil.spec.rig import Rig

NODE = Path(__file__).with_name("node.py")


def make_rig(**can: dict) -> Rig:
    """A rig with the given emulated CAN buses (name → extra fields) and one serial link."""
    buses = {name: {"kind": "can", "emulated": True, **extra} for name, extra in can.items()}
    buses["console"] = {"kind": "serial", "emulated": True, "baudrate": 115200, "pace": False}
    return Rig.model_validate({"name": "test", "buses": buses})


@pytest.fixture
def rig_buses(tmp_path):
    """Bring up a rig given as keyword buses: ``with rig_buses(chassis={...}) as buses``."""
    def up(**can):
        return RigBuses(make_rig(**can), tmp_path / "run")
    return up


def start_node(buses: RigBuses, mode: str, bus: str, arg: str) -> subprocess.Popen:
    """A node process (tests/simbus/node.py) on ``bus``; waits for it to say it is ready/sent."""
    env = {**os.environ, **buses.env([bus])}
    return subprocess.Popen([sys.executable, str(NODE), mode, bus, arg], env=env, stdout=subprocess.PIPE, text=True)


def frames_file(tmp_path: Path, frames: list) -> str:
    path = tmp_path / "frames.json"
    path.write_text(json.dumps(frames))
    return str(path)
