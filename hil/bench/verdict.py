"""From a recording to a verdict: load it, analyse the bench on it, draw the plots, fill the result.

The same path serves ``hil run`` (right after the bench) and ``hil analyze`` (any recording later):
the injector's replay figures and the bus statistics are read from the recording's events, so
nothing but the recording is needed. Besides hil's MCAP recordings, any CAN log python-can reads
(BLF, ASC, TRC, candump, CSV, MF4 — e.g. from CANoe) can be judged; its channels name the buses,
or are mapped onto bus names.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hil.analysis import Analysis, Database, analyse
from hil.analysis.harness import judge_harness, probe_bounds
from hil.analysis.measure import MeasurementResult
from hil.results import BenchResult
from hil.recording.frames import DATA_WIDTH, Frames
from hil.spec.suite import COUNT_STATS, Bench, HarnessBudget, Measurement
from hil.values import Outcome, Verdict


def judge_recording(bench: Bench, budget: HarnessBudget, db: Database, recording: Path, out_dir: Path,
                    result: BenchResult, channel_map: dict[str, str] | None = None) -> Analysis:
    """Analyse ``recording`` for ``bench``; set the verdict, measurements, probe and chain
    statistics with the harness error that can enter them, the harness figures, replay figures and
    plots (under ``out_dir/plots``) on ``result``; plot paths are relative to ``out_dir``'s parent
    (the run folder).

    The harness is judged first: when it broke ``budget`` (or the replay broke its own promises),
    the verdict is ``error`` and the stack's measurements are shown but not judged."""
    from hil.report.plots import render_bench_plots

    buses, recorded, cut, datagrams = read_recording(recording, channel_map or {})
    if cut is not None:
        result.warnings.append(f"{cut}; judged on what it holds")
    events = {kind: data for kind, data in recorded}  # the last event of each kind
    replay = events.get("replay")
    bus_stats = events.get("bus-stats") or {}
    lateness = (replay or {}).get("lateness_ns") or {}
    analysis = analyse(bench, buses, db, replay=lateness,
                       lost={bus: s.get("overruns", 0) for bus, s in bus_stats.items()}, datagrams=datagrams)
    eaten = sum(1 for kind, data in recorded if kind == "fault" and data.get("kind") in WIRE_EATS)
    harness = judge_harness(recorded, budget, buses, eaten)
    probes, chains = probe_bounds(bench, harness)
    # each measurement, and whether it is the harness's own (a replay figure) rather than the stack's
    judged = [(replace(m, harness_ns=_bound_of(spec, probes, chains)), spec.replay)
              for spec, m in zip(bench.measurements, analysis.measurements)]
    aborted = replay_aborted(replay or {})
    analysis.measurements += aborted  # the Analysis (pytest plugin) keeps the stack's own outcomes
    judged += [(m, False) for m in aborted]
    harness.breaches += [f"replay measurement {m.name} = {m.value:.6g} {m.unit}, limits {m.limits}"
                         for m, own in judged if own and m.outcome == Outcome.FAIL and m.value is not None]
    if harness.breaches:  # the stack's figures are not judged against a harness out of budget
        result.verdict, result.error, result.error_kind = Verdict.ERROR, harness.message(), HARNESS_ERROR
        result.phase = "analyse"
        judged = [(m if own else unjudged(m), own) for m, own in judged]
    else:
        result.verdict = Verdict.FAIL if any(m.outcome == Outcome.FAIL for m, _ in judged) else Verdict.PASS
    result.measurements = [m for m, _ in judged]
    result.harness = harness.to_json()
    result.probes = {name: {"stats": s.to_json(), "duplicates": p.duplicates, "unit": "ns", "harness": probes[name]}
                     for name, (p, s) in analysis.probes.items()}
    result.chains = {name: {"stats": s.to_json(), "hops": {h: hs.to_json() for h, hs in hops.items()},
                            "harness": chains[name]}
                     for name, (_, s, hops) in analysis.chains.items()}
    if replay is not None:
        result.replay = {k: v for k, v in replay.items() if k != "lateness"}
    plots = render_bench_plots(analysis, (replay or {}).get("lateness"), out_dir / "plots")
    result.files["plots"] = {title: f"{out_dir.name}/plots/{name}" for title, name in plots.items()}
    return analysis


WIRE_EATS = ("drop", "bus_off", "corrupt")  # fault events after which a frame never reaches the wire whole
HARNESS_ERROR = "HarnessError"  # error_kind of a bench whose harness broke its budget


def replay_aborted(replay: dict[str, Any]) -> list[MeasurementResult]:
    """The stack's part of the replay's promises: a closed-loop wait that timed out (the stack never
    answered) ends the replay early, a failed measurement of the stack. (Frames early or never seen
    on the bus are the harness's: :func:`hil.analysis.harness.replay_breaches`.)"""
    if not replay.get("aborted"):
        return []
    planned, sent = replay.get("frames_planned", 0), replay.get("frames_sent", 0)
    return [MeasurementResult("replay-aborted", "replay", "count", float(sent), "frames", f"= {planned}", Outcome.FAIL,
                              f"the replay was aborted: {replay['aborted']}")]


def unjudged(m: MeasurementResult) -> MeasurementResult:
    """``m`` shown, not judged: the harness broke its budget while it was measured."""
    would = m.outcome + (f": {m.detail}" if m.detail else "")
    return replace(m, outcome=Outcome.UNJUDGED, detail=f"not judged, the harness broke its budget (would be {would})")


def _bound_of(spec: Measurement, probes: dict[str, dict], chains: dict[str, dict]) -> float | None:
    """The harness error (p99 bound, ns) that can enter a latency measurement; None for other
    measurements and when the harness was not measured."""
    if spec.stat in COUNT_STATS:
        return None
    bound = probes.get(spec.probe) if spec.probe is not None else chains.get(spec.chain) if spec.chain else None
    return None if bound is None else bound["p99_ns"]


def read_recording(path: Path, channel_map: dict[str, str]) \
        -> tuple[dict[str, Frames], list[tuple[str, Any]], str | None, dict[str, Any]]:
    """Frames per bus, every event as (kind, data) in time order (MCAP recordings only), what
    was cut from a recording that was not closed (None for one that was): a recording whose
    writer was killed is judged on what it holds, with that said; and datagrams per network."""
    if path.suffix.lower() == ".mcap":
        from hil.recording import load

        rec = load(path)
        buses = {channel_map.get(bus, bus): frames for bus, frames in rec.can.items()}
        return buses, [(e.kind, e.data) for e in rec.events], rec.cut, rec.datagrams
    from hil.stimulus.events import CanEvent
    from hil.stimulus.readers import read_source

    by_bus: dict[str, list[CanEvent]] = {}
    for ev in read_source(path).events:
        if isinstance(ev, CanEvent):
            by_bus.setdefault(channel_map.get(ev.channel, ev.channel), []).append(ev)
    return {bus: _frames(bus, evs) for bus, evs in by_bus.items()}, [], None, {}


def _frames(bus: str, events: list) -> Frames:
    data = np.zeros((len(events), DATA_WIDTH), np.uint8)
    for i, ev in enumerate(events):  # building the columns once, from the parsed log
        data[i, : len(ev.data)] = np.frombuffer(ev.data, np.uint8)
    return Frames.from_arrays(bus, [e.t_ns for e in events], [e.id for e in events],
                              [e.flags for e in events], [len(e.data) for e in events], data)
