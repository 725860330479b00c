"""Measurements: a value with a unit, judged against limits → pass / marginal / fail.

Limits (``lt``, ``le``, ``gt``, ``ge``, ``range``) are in the measurement's own unit. A value inside
the limits but closer than ``marginal`` to one of them is **marginal** (it passes, and is flagged, as
in OpenHTF). A value that cannot be computed (no samples) fails, with the reason. A measurement
taken while the harness broke its error budget is shown **unjudged** (``hil.bench.verdict``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hil.spec.suite import COUNT_STATS, Measurement
from hil.values import Outcome


TIME_UNITS_NS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}


def ns_to(unit: str, value_ns: float) -> float:
    """A time in ns expressed in ``unit`` (one of :data:`TIME_UNITS_NS`)."""
    return value_ns / TIME_UNITS_NS[unit]


def signal_unit_problem(m: Measurement, dbc_unit: str) -> str | None:
    """Why ``m.unit`` does not fit the DBC unit of its signal, or None. (Time and count units are
    checked with the suite file itself.)"""
    if m.stat in COUNT_STATS:
        return None
    if dbc_unit and m.unit and m.unit != dbc_unit:
        return f"expected unit {dbc_unit!r} (the DBC unit of {m.signal}), got {m.unit!r}"
    return None


@dataclass(frozen=True)
class MeasurementResult:
    """One judged measurement, as it goes into results.json, JUnit properties and history."""

    name: str
    source: str
    stat: str
    value: float | None
    unit: str
    limits: str
    outcome: Outcome
    detail: str = ""
    worse: str = ""  # "higher" / "lower": which way a change moves towards the limits ("" both)
    limit: float | None = None  # the limit a change in the ``worse`` direction moves towards
    harness_ns: float | None = None  # a latency's harness error bound (p99, ns); None: not measured or n/a

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> MeasurementResult:
        return cls(**{**d, "outcome": Outcome(d["outcome"])})


def judge(m: Measurement, value: float | None, source: str, unit: str | None = None,
          detail: str = "") -> MeasurementResult:
    """The outcome of ``value`` (already in ``m.unit``) against ``m``'s limits."""
    unit = m.unit if unit is None else unit
    stat = "count" if m.frames is not None or m.lost else m.stat
    upper = m.lt is not None or m.le is not None or m.range is not None
    lower = m.gt is not None or m.ge is not None or m.range is not None
    worse = "higher" if upper and not lower else "lower" if lower and not upper else ""
    limit = _tightest(m.lt, m.le, min) if worse == "higher" else _tightest(m.gt, m.ge, max) if worse else None
    if value is None or math.isnan(value):
        return MeasurementResult(m.name, source, stat, None, unit, limits_text(m), Outcome.FAIL,
                                 detail or "no value: nothing to measure in the recording", worse, limit)
    outcome, why = _outcome(m, value)
    text = "; ".join(x for x in (why, detail) if x)
    return MeasurementResult(m.name, source, stat, float(value), unit, limits_text(m), outcome, text, worse, limit)


def _tightest(a: float | None, b: float | None, pick) -> float | None:
    given = [v for v in (a, b) if v is not None]
    return pick(given) if given else None


def _outcome(m: Measurement, v: float) -> tuple[Outcome, str]:
    lo_checks = [(m.gt, lambda x, L: x > L, ">"), (m.ge, lambda x, L: x >= L, "≥")]
    hi_checks = [(m.lt, lambda x, L: x < L, "<"), (m.le, lambda x, L: x <= L, "≤")]
    if m.range is not None:
        lo_checks.append((m.range[0], lambda x, L: x >= L, "≥"))
        hi_checks.append((m.range[1], lambda x, L: x <= L, "≤"))
    for limit, ok, sym in lo_checks + hi_checks:
        if limit is not None and not ok(v, limit):
            return Outcome.FAIL, f"{_fmt(v)} is not {sym} {_fmt(limit)}"
    band = m.marginal
    if band:
        for limit, _, sym in lo_checks:
            if limit is not None and v - limit < band:
                return Outcome.MARGINAL, f"within {_fmt(band)} of the limit {sym} {_fmt(limit)}"
        for limit, _, sym in hi_checks:
            if limit is not None and limit - v < band:
                return Outcome.MARGINAL, f"within {_fmt(band)} of the limit {sym} {_fmt(limit)}"
    return Outcome.PASS, ""


def limits_text(m: Measurement) -> str:
    """The limits as people write them: ``≤ 50 ms``, ``[0.5, 2] bar``, ``> 10``."""
    parts = [f"{sym} {_fmt(v)}" for sym, v in (("<", m.lt), ("≤", m.le), (">", m.gt), ("≥", m.ge)) if v is not None]
    if m.range is not None:
        parts.append(f"[{_fmt(m.range[0])}, {_fmt(m.range[1])}]")
    return ", ".join(parts) + (f" {m.unit}" if m.unit else "")


def _fmt(v: float) -> str:
    return f"{v:.6g}"
