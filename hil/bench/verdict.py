"""From a recording to a verdict: load it, analyse the bench on it, draw the plots, fill the result.

The same path serves ``hil run`` (right after the bench) and ``hil analyze`` (any recording later):
the injector's replay figures and the bus statistics are read from the recording's events, so
nothing but the recording is needed. Besides hil's MCAP recordings, any CAN log python-can reads
(BLF, ASC, TRC, candump, CSV, MF4 — e.g. from CANoe) can be judged; its channels name the buses,
or are mapped onto bus names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typing import Any

from hil.analysis import Analysis, Database, analyse
from hil.analysis.measure import FAIL, MeasurementResult
from hil.bench.results import BenchResult
from hil.recording.frames import DATA_WIDTH, Frames
from hil.spec.suite import Bench


def judge_recording(bench: Bench, db: Database, recording: Path, out_dir: Path, result: BenchResult,
                    channel_map: dict[str, str] | None = None) -> Analysis:
    """Analyse ``recording`` for ``bench``; set the verdict, measurements, probe and chain
    statistics, replay figures and plots (under ``out_dir/plots``) on ``result``; plot paths are
    relative to ``out_dir``'s parent (the run folder)."""
    from hil.report.plots import render_bench_plots

    buses, recorded, cut = read_recording(recording, channel_map or {})
    if cut is not None:
        result.warnings.append(f"{cut}; judged on what it holds")
    events = {kind: data for kind, data in recorded}  # the last event of each kind
    replay = events.get("replay")
    bus_stats = events.get("bus-stats") or {}
    lateness = (replay or {}).get("lateness_ns") or {}
    analysis = analyse(bench, buses, db, replay=lateness,
                       lost={bus: s.get("overruns", 0) for bus, s in bus_stats.items()})
    eaten = sum(1 for kind, data in recorded if kind == "fault" and data.get("kind") in WIRE_EATS)
    analysis.measurements.extend(replay_faults(replay or {}, eaten))
    result.verdict = analysis.outcome
    result.measurements = analysis.measurements
    result.probes = {name: {"stats": s.to_json(), "duplicates": p.duplicates, "unit": "ns"}
                     for name, (p, s) in analysis.probes.items()}
    result.chains = {name: {"stats": s.to_json(), "hops": {h: hs.to_json() for h, hs in hops.items()}}
                     for name, (_, s, hops) in analysis.chains.items()}
    if replay is not None:
        result.replay = {k: v for k, v in replay.items() if k != "lateness"}
    plots = render_bench_plots(analysis, (replay or {}).get("lateness"), out_dir / "plots")
    result.files["plots"] = {title: f"{out_dir.name}/plots/{name}" for title, name in plots.items()}
    return analysis


WIRE_EATS = ("drop", "bus_off", "corrupt")  # fault events after which a frame never reaches the wire whole


def replay_faults(replay: dict[str, Any], eaten: int = 0) -> list[MeasurementResult]:
    """The replay's own promises, judged whatever the bench measures: no frame early, every planned
    frame sent (a closed-loop wait that timed out ends the replay), every sent frame seen on the
    bus (its send time is known) but those the bench's faults took off the wire (``eaten``: a
    deliberate dropout is no broken promise). Each broken one is a failed measurement; none when
    all hold."""
    out = []
    early = replay.get("frames_early", 0)
    if early:
        out.append(MeasurementResult("replay-early", "replay", "early", float(early), "frames", "= 0", FAIL,
                                     f"{early} frame(s) went out before their time"))
    planned, sent = replay.get("frames_planned", 0), replay.get("frames_sent", 0)
    if replay.get("aborted"):
        out.append(MeasurementResult("replay-aborted", "replay", "count", float(sent), "frames",
                                     f"= {planned}", FAIL, f"the replay was aborted: {replay['aborted']}"))
    unseen = sent - replay.get("frames_echoed", sent) - eaten
    if unseen > 0:
        out.append(MeasurementResult("replay-unseen", "replay", "count", float(unseen), "frames", "= 0", FAIL,
                                     f"{unseen} of {sent} frame(s) sent were never seen on the bus, so "
                                     "when they went out is unknown"))
    return out


def read_recording(path: Path, channel_map: dict[str, str]) \
        -> tuple[dict[str, Frames], list[tuple[str, Any]], str | None]:
    """Frames per bus, every event as (kind, data) in time order (MCAP recordings only), and what
    was cut from a recording that was not closed (None for one that was): a recording whose
    writer was killed is judged on what it holds, with that said."""
    if path.suffix.lower() == ".mcap":
        from hil.recording import load

        rec = load(path)
        buses = {channel_map.get(bus, bus): frames for bus, frames in rec.can.items()}
        return buses, [(e.kind, e.data) for e in rec.events], rec.cut
    from hil.stimulus.events import CanEvent
    from hil.stimulus.readers import read_source

    by_bus: dict[str, list[CanEvent]] = {}
    for ev in read_source(path).events:
        if isinstance(ev, CanEvent):
            by_bus.setdefault(channel_map.get(ev.channel, ev.channel), []).append(ev)
    return {bus: _frames(bus, evs) for bus, evs in by_bus.items()}, [], None


def _frames(bus: str, events: list) -> Frames:
    data = np.zeros((len(events), DATA_WIDTH), np.uint8)
    for i, ev in enumerate(events):  # building the columns once, from the parsed log
        data[i, : len(ev.data)] = np.frombuffer(ev.data, np.uint8)
    return Frames.from_arrays(bus, [e.t_ns for e in events], [e.id for e in events],
                              [e.flags for e in events], [len(e.data) for e in events], data)
