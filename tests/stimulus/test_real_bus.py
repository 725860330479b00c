"""The injector's real-bus path (sleep, learned spin, send) through a python-can interface it knows
only by name, into a sink on loopback that the kernel stamps (benchmarks/udp_sink.py, the
instrument of benchmarks/replay_fidelity.py): every frame goes out once, in order, never before its
planned time, and the report measures it from the adapter's echoes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hil.buses import RigBuses
from hil.simbus.wire import WireModel
from hil.spec.rig import Rig
from hil.spec.suite import Stimulus
from hil.stimulus.injector import play
from hil.stimulus.timeline import build_timeline

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from udp_sink import INTERFACE, Sink, plugin_path  # noqa: E402


@pytest.fixture
def sink(tmp_path, monkeypatch):
    (tmp_path / "plugin").mkdir()
    monkeypatch.setenv("PYTHONPATH", plugin_path(tmp_path / "plugin"))  # the injector process inherits it
    s = Sink()
    yield s
    if s.proc.poll() is None:
        s.finish()


def test_a_real_bus_gets_every_frame_in_order_and_none_early(tmp_path, sink):
    log = tmp_path / "s.log"
    log.write_text("".join(f"({i * 0.002:.6f}) can0 {0x100 + i % 3:03X}#{i:04X}00 R\n" for i in range(300)))
    rig = Rig.model_validate({"name": "real", "buses": {"can0": {"kind": "can", "interface": INTERFACE,
                                                                 "channel": sink.channel, "bitrate": 500_000}}})
    timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(log)}]}), rig)
    with RigBuses(rig, tmp_path / "run") as buses:
        report = play(timeline, buses)
    arrived = sink.finish()
    wire = WireModel(500_000)
    assert [(i, d) for _, i, d in arrived] == [(s.event.id, s.event.data) for s in timeline.steps]
    released = [report.start_ns + s.t_ns - wire.timing(s.event.id, 0, len(s.event.data), s.event.data)[1]
                for s in timeline.steps]
    assert all(t >= r for (t, _, _), r in zip(arrived, released)), "a frame went out before its time"
    assert (report.frames_sent, report.frames_echoed, report.frames_early) == (300, 300, 0)
    assert report.echoes["can0"][0][1:] == (0x100, 0, bytes.fromhex("000000"))
    assert report.host["wake"]["sleeps"] > 0 and isinstance(report.host["slice"], str)
