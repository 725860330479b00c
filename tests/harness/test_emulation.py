"""Every run measures the harness: nodes and broker report per bus, a recording keeps it, and the
replay's lateness is when frames were really delivered."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from hil.buses import RigBuses
from hil.harness import KINDS, ErrorHistogram
from hil.recording import Recorder, load
from hil.spec.rig import Rig

NODE = Path(__file__).parents[1] / "simbus" / "node.py"
RIG = Rig.model_validate({"name": "h", "buses": {"chassis": {"kind": "can", "emulated": True},
                                                 "body": {"kind": "can", "emulated": True}}})


@pytest.fixture
def buses(tmp_path):
    with RigBuses(RIG, tmp_path / "run") as b:
        yield b


def _harness(buses, name: str) -> dict[str, ErrorHistogram]:
    return {k: ErrorHistogram.from_json(v) for k, v in buses.stats(name)["harness"].items()}


def test_stats_carry_the_harness_error_of_every_node_also_one_killed(buses):
    """A node reports every 0.25 s while it receives; SIGKILL loses at most the last interval, and
    what it reported stays with the bus after it left."""
    child = subprocess.Popen([sys.executable, str(NODE), "recv", "chassis", "1000"],
                             env={**os.environ, **buses.env(["chassis"])}, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with buses.open_can("chassis") as tx:
            for i in range(20):  # 2 s: about 8 reports
                tx.send(can.Message(arbitration_id=0x100, data=[i], is_extended_id=False))
                assert child.stdout.readline()  # it received this one
                time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    deadline = time.monotonic() + 10
    while buses.stats("chassis")["clients"] > 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the broker saw it leave
    h = _harness(buses, "chassis")
    assert set(h) == set(KINDS)
    assert 20 - 4 <= h["delivery"].count <= 20  # 0.25 s at 10 frames/s: at most 3 unreported
    assert h["delivery"].early == 0
    assert h["send"].count == 20
    assert _harness(buses, "body")["delivery"].count == 0  # per bus


def test_a_recording_of_emulated_buses_carries_harness_events(buses, tmp_path):
    path = tmp_path / "run.mcap"
    with Recorder(path, buses, ["chassis", "body"]):
        with buses.open_can("chassis") as tx, buses.open_can("chassis") as rx:
            for i in range(30):
                tx.send(can.Message(arbitration_id=0x200, data=[i], is_extended_id=False))
                assert rx.recv(10) is not None
                time.sleep(0.05)
        # rx reported at its shutdown; the recorder's own node hands frames out as they come and
        # measures nothing
    events = [e for e in load(path).events if e.kind == "harness"]
    assert len(events) >= 2  # every second while recording, and once at the stop
    last = events[-1].data["buses"]
    assert set(last) == {"chassis", "body"} and set(last["chassis"]) == set(KINDS)
    assert ErrorHistogram.from_json(last["chassis"]["delivery"]).count == 30
    assert ErrorHistogram.from_json(last["chassis"]["send"]).count == 30
    counts = [ErrorHistogram.from_json(e.data["buses"]["chassis"]["send"]).count for e in events]
    assert counts == sorted(counts)  # cumulative


def test_replay_lateness_is_when_frames_were_delivered(buses, tmp_path):
    """With timed release the broker's stamp always equals the plan; the report must measure more
    than that (it used to say 0 µs for every frame)."""
    from hil.spec.suite import Stimulus
    from hil.stimulus.injector import play
    from hil.stimulus.timeline import build_timeline

    log = tmp_path / "s.log"
    log.write_text("".join(f"({i * 0.002:.6f}) can0 123#{i:02X}\n" for i in range(200)))
    timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(log), "map": {"can0": "chassis"}}]}),
                              RIG)
    report = play(timeline, buses)
    assert report.frames_echoed == 200 and report.frames_early == 0
    assert report.host["lateness"] == {"chassis": "delivered"}
    assert min(report.lateness_ns) > 0  # a node gets a frame some time after its end of frame, never at it
    promised = [t - report.start_ns - s.t_ns for (t, *_), s in zip(report.echoes["chassis"], timeline.steps)]
    assert all(0 <= p <= late for p, late in zip(promised, report.lateness_ns))  # delivered after the stamp
