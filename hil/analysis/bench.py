"""Analyse one bench's recording: run its probes and chains, evaluate its measurements.

Input is only what a recording holds (frames per bus) plus the injector's replay figures, so any
recording — also an old one, or one converted from another tool — can be re-analysed. Each kind of
measurement source is a :class:`Source` in the ``hil.measurement`` registry (:mod:`hil.registry`):
the built-ins are keys of a measurement (``probe:``, ``signal:``, …), a plugin's is written as
``source: {kind: NAME, ...}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hil import registry

from hil.analysis.measure import MeasurementResult, judge, ns_to, signal_unit_problem
from hil.analysis.probes import ChainPairing, Pairing, field_column, probe_frames, run_chain, run_probe
from hil.analysis.signals import Column, Database, frames_with_id, signal_column
from hil.analysis.stats import Stats, describe
from hil.errors import AnalysisError
from hil.recording.frames import Frames
from hil.recording.loader import Datagram
from hil.spec.suite import COUNT_STATS, Bench, Measurement, SourceSpec
from hil.values import Outcome

Problem = tuple[tuple, str]


@dataclass
class Analysis:
    """Everything measured on one bench: probe and chain statistics (ns), measurement verdicts, and
    the columns the report plots."""

    probes: dict[str, tuple[Pairing, Stats]] = field(default_factory=dict)
    chains: dict[str, tuple[ChainPairing, Stats, dict[str, Stats]]] = field(default_factory=dict)
    measurements: list[MeasurementResult] = field(default_factory=list)
    signals: dict[str, Column] = field(default_factory=dict)
    budgets: dict[str, int | None] = field(default_factory=dict)  # probe name, or "chain NAME"

    @property
    def outcome(self) -> Outcome:
        """fail if any measurement failed, else pass (marginal passes)."""
        return Outcome.FAIL if any(m.outcome == Outcome.FAIL for m in self.measurements) else Outcome.PASS


def analyse(bench: Bench, buses: Mapping[str, Frames], db: Database,
            replay: Mapping[str, float] | None = None, lost: Mapping[str, int] | None = None,
            datagrams: Mapping[str, Sequence[Datagram]] | None = None) -> Analysis:
    """Run ``bench``'s probes, chains and measurements on ``buses`` (bus name → recorded frames)
    and ``datagrams`` (network → recorded datagrams).

    ``replay`` is the injector's lateness in ns by statistic (p50, p99, max, ...); ``lost`` the frames
    lost per bus. Raises :class:`AnalysisError` when a probe names what the recording lacks."""
    out = Analysis()
    for probe in bench.probes:
        pairing = run_probe(probe, buses, db, datagrams)
        out.probes[probe.name] = (pairing, describe(pairing.latency_ns, pairing.missed, probe.budget))
        out.budgets[probe.name] = probe.budget
    for c in bench.chains:
        cp = run_chain(c, {name: p for name, (p, _) in out.probes.items()})
        hops = {name: describe(v) for name, v in cp.hops.items()}
        out.chains[c.name] = (cp, describe(cp.total_ns, cp.missed, c.budget), hops)
        out.budgets[f"chain {c.name}"] = c.budget
    for m in bench.measurements:
        got = Evidence(out, buses, db, replay or {}, lost or {})
        out.measurements.append(registry.MEASUREMENTS.implementation(m.sources()[0])(m.source).measure(m, got))
        if m.signal is not None:
            out.signals[f"{m.bus}:{m.signal}"] = _signal(m, buses, db)
    for probe in bench.probes:  # edge probes: plot the signals whose crossings they pair
        for end in (probe.from_, probe.to) if probe.pair == "edge" else ():
            if end.signal is not None:
                what = end.message if end.message is not None else f"{end.id:#x}"
                out.signals.setdefault(f"{end.bus}:{what}.{end.signal}",
                                       field_column(end, probe_frames(end, buses, db), db))
    return out


def check_bench(bench: Bench, db: Database) -> list[Problem]:
    """DBC names and signal units of the bench's probes and measurements, located for the spec
    loader: found before a bench runs, so a typo never costs a run."""
    out: list[Problem] = []
    for j, m in enumerate(bench.measurements):
        if m.signal is None:
            continue
        try:
            unit = _signal_def(m, db)[1].unit or ""
        except AnalysisError as exc:
            out.append((("measurements", j, "signal"), str(exc)))
            continue
        problem = signal_unit_problem(m, unit)
        if problem:
            out.append((("measurements", j, "unit"), problem))
    for j, p in enumerate(bench.probes):
        for side, end in (("from", p.from_), ("to", p.to)):
            try:
                if end.message is not None:
                    db.message(end.message)
                if end.signal is not None:
                    message = end.message if end.message is not None else end.id
                    assert message is not None  # checked with the suite: a CAN end has 'id' or 'message'
                    db.signal(message, end.signal)
            except AnalysisError as exc:
                out.append((("probes", j, side), str(exc)))
    return out


@dataclass(frozen=True)
class Evidence:
    """What a measurement source reads: the bench's probes and chains so far, the recorded frames
    per bus, the DBC database, the injector's replay lateness (ns by statistic) and the frames lost
    per bus."""

    analysis: Analysis
    buses: Mapping[str, Frames]
    db: Database
    replay: Mapping[str, float]
    lost: Mapping[str, int]


class Source(ABC):
    """A measurement source (``hil.measurement``): the value a measurement judges, through
    :func:`hil.analysis.measure.judge`. ``spec`` is the measurement's ``source`` (None for a
    built-in); a plugin's carries its model as ``model`` (a :class:`hil.spec.suite.SourceSpec`
    whose ``kind`` is the entry point's name)."""

    model: ClassVar[type]

    def __init__(self, spec: SourceSpec | None = None):
        self.spec = spec

    @abstractmethod
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult: ...


class ProbeSource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        assert m.probe is not None  # this source is the one the measurement names (Measurement.sources)
        if m.stat == "duplicates":  # a frozen counter: answered once, sent many times
            return judge(m, float(got.analysis.probes[m.probe][0].duplicates), f"probe {m.probe}")
        return _from_stats(m, got.analysis.probes[m.probe][1], f"probe {m.probe}")


class ChainSource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        assert m.chain is not None  # this source is the one the measurement names (Measurement.sources)
        return _from_stats(m, got.analysis.chains[m.chain][1], f"chain {m.chain}")


class CycleSource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        assert m.bus is not None and m.cycle is not None  # checked with the suite (_measurement_problems)
        t = frames_with_id(got.buses, m.bus, m.cycle).t_ns
        return _from_stats(m, describe(np.diff(t)), f"cycle {m.cycle:#x} on {m.bus}")


class FramesSource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        assert m.bus is not None and m.frames is not None  # checked with the suite (_measurement_problems)
        return judge(m, float(len(frames_with_id(got.buses, m.bus, m.frames))), f"frames {m.frames:#x} on {m.bus}")


class LostSource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        assert m.bus is not None  # checked with the suite (_measurement_problems)
        if m.bus not in got.lost:
            return judge(m, None, f"lost on {m.bus}", detail=f"no loss figure for bus {m.bus!r}")
        return judge(m, float(got.lost[m.bus]), f"lost on {m.bus}")


class ReplaySource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        if got.replay.get(m.stat) is None:
            have = ", ".join(got.replay) or "none"
            return judge(m, None, "replay", detail=f"no replay figure {m.stat!r}; have: {have}")
        return judge(m, ns_to(m.unit, got.replay[m.stat]), "replay")


class SignalSource(Source):
    def measure(self, m: Measurement, got: Evidence) -> MeasurementResult:
        column = _signal(m, got.buses, got.db)
        stats = describe(column.value)
        value = float(stats.count) if m.stat == "count" else stats.get(m.stat)
        return judge(m, value, f"signal {m.signal} on {m.bus}", unit=m.unit or column.unit)


def _from_stats(m: Measurement, stats: Stats, source: str) -> MeasurementResult:
    value = stats.get(m.stat)
    if m.stat not in COUNT_STATS:
        value = ns_to(m.unit, value)
    return judge(m, value, source)


def _signal_def(m: Measurement, db: Database):
    assert m.signal is not None  # this source is the one the measurement names (Measurement.sources)
    message, _, signal = m.signal.rpartition(".")
    if not message:
        raise AnalysisError(f"expected MESSAGE.SIGNAL, got {m.signal!r}")
    return db.signal(message, signal)


def _signal(m: Measurement, buses: Mapping[str, Frames], db: Database) -> Column:
    msg, sig = _signal_def(m, db)
    assert m.bus is not None  # checked with the suite (_measurement_problems)
    return signal_column(frames_with_id(buses, m.bus, msg.frame_id), sig, message=msg)
