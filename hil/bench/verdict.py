"""From a recording to a verdict: load it, analyse the bench on it, draw the plots, fill the result.

The same path serves ``hil run`` (right after the bench) and ``hil analyze`` (any recording later):
the injector's replay figures and the bus statistics are read from the recording's events, so
nothing but the recording is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.analysis import Analysis, Database, analyse
from hil.bench.results import BenchResult
from hil.errors import RecordingError
from hil.spec.suite import Bench


def judge_recording(bench: Bench, db: Database, recording: Path, out_dir: Path, result: BenchResult) -> Analysis:
    """Analyse ``recording`` for ``bench``; set the verdict, measurements, probe and chain
    statistics, replay figures and plots (under ``out_dir/plots``) on ``result``; plot paths are
    relative to ``out_dir``'s parent (the run folder)."""
    from hil.recording import load
    from hil.report.plots import render_bench_plots

    rec = load(recording)
    if not rec.complete:
        raise RecordingError(f"{recording}: the recording is truncated (no MCAP footer); refusing to judge it")
    replay = _last_event(rec, "replay")
    bus_stats = _last_event(rec, "bus-stats") or {}
    lateness = (replay or {}).get("lateness_ns") or {}
    analysis = analyse(bench, rec.can, db, replay=lateness,
                       lost={bus: s.get("overruns", 0) for bus, s in bus_stats.items()})
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


def _last_event(rec: Any, kind: str) -> dict[str, Any] | None:
    found = [e.data for e in rec.events if e.kind == kind]
    return found[-1] if found else None
