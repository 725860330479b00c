"""What a bench and a suite run produce: plain, picklable results that serialise to results.json.

The JSON layout is versioned (:data:`SCHEMA_VERSION`) and documented in ``docs/results.md``; its
JSON Schema is :func:`json_schema`. Paths inside results are relative to the run folder, so a run
folder can be moved or archived whole.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hil.analysis.measure import MeasurementResult
from hil.errors import EXIT_FAILED, EXIT_INFRA, EXIT_OK
from hil.values import Outcome, Verdict

SCHEMA_VERSION = 2
READS = (1, 2)  # versions from_json reads (version 1 lacks the harness figures and the selection)


@dataclass
class BenchResult:
    """One bench's outcome. ``dir`` is the bench folder (absolute while running, as the cluster
    dispatcher expects); ``files`` maps a kind (recording, consoles, plots...) to paths relative to
    the run folder."""

    name: str
    verdict: Verdict
    repeat: int = 0
    rig: str = ""
    dir: str = ""
    started_utc: str = ""
    duration_s: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    phase: str | None = None
    measurements: list[MeasurementResult] = field(default_factory=list)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    replay: dict[str, Any] | None = None
    harness: dict[str, Any] | None = None  # the harness's error and budget (None: the bench was not analysed)
    files: dict[str, Any] = field(default_factory=dict)
    flaky: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. a recording judged although it was cut
    power_cycled: list[str] = field(default_factory=list)  # targets whose power switch was cycled before deploying

    @classmethod
    def error_result(cls, name: str, message: str, **kw: Any) -> BenchResult:
        return cls(name=name, verdict=Verdict.ERROR, error=message, **kw)

    @property
    def key(self) -> str:
        return run_key(self.name, self.repeat)

    def failed_measurements(self) -> list[MeasurementResult]:
        return [m for m in self.measurements if m.outcome == Outcome.FAIL]

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["measurements"] = [m.to_json() for m in self.measurements]
        return _clean(d)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BenchResult:
        d = dict(d)
        d["measurements"] = [MeasurementResult.from_json(m) for m in d.get("measurements", [])]
        d["verdict"] = Verdict(d["verdict"])
        return cls(**d)


@dataclass
class SuiteResult:
    """One run: a suite on a rig. ``verdict`` and ``exit_code`` follow from the benches."""

    suite: str
    rig: str
    suite_path: str = ""
    rig_path: str = ""
    run_dir: str = ""
    started_utc: str = ""
    duration_s: float = 0.0
    host: str = ""
    hil_version: str = ""
    stack: dict[str, str] = field(default_factory=dict)  # name → version of every stack deployed
    benches: list[BenchResult] = field(default_factory=list)
    regressions: list[dict[str, Any]] = field(default_factory=list)
    run_id: str = ""
    selected: list[str] | None = None  # the benches --bench chose; None: the whole suite ran
    stacks_replaced: dict[str, str] = field(default_factory=dict)  # --stack OLD=NEW: the suite's stacks replaced

    @property
    def verdict(self) -> Verdict:
        return suite_verdict([b.verdict for b in self.benches])

    @property
    def exit_code(self) -> int:
        return {Verdict.ERROR: EXIT_INFRA, Verdict.FAIL: EXIT_FAILED}.get(self.verdict, EXIT_OK)

    def counts(self) -> dict[str, int]:
        return {v: sum(b.verdict == v for b in self.benches) for v in Verdict}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["benches"] = [b.to_json() for b in self.benches]
        return _clean({"schema": "hil-results", "version": SCHEMA_VERSION, "verdict": self.verdict,
                       "exit_code": self.exit_code, "counts": self.counts(), **d})

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SuiteResult:
        if d.get("schema") != "hil-results" or d.get("version") not in READS:
            raise ValueError(f"expected hil-results version {' or '.join(map(str, READS))}, got "
                             f"{d.get('schema')!r} version {d.get('version')!r}")
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["benches"] = [BenchResult.from_json(b) for b in d["benches"]]
        return cls(**kw)


def run_key(name: str, repeat: int) -> str:
    """A bench run's name within a run (and its folder): the bench name, ``#N`` for repeat N > 0."""
    return name if repeat == 0 else f"{name}#{repeat}"


def suite_verdict(verdicts: list[Verdict]) -> Verdict:
    """The worst verdict: error > fail > pass; skipped only when nothing ran."""
    for v in (Verdict.ERROR, Verdict.FAIL, Verdict.PASS):
        if v in verdicts:
            return v
    return Verdict.SKIPPED


def _clean(obj: Any) -> Any:
    """NaN and infinities become null: JSON has no NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of results.json, version :data:`SCHEMA_VERSION`."""
    num = {"type": ["number", "null"]}
    stats = {"type": "object", "required": ["count", "missed", "p50", "p99", "max"],
             "properties": {k: num for k in ("min", "p50", "p90", "p99", "p99_9", "max", "mean", "std",
                                              "first", "last")}
             | {"count": {"type": "integer"}, "missed": {"type": "integer"},
                "deadline_misses": {"type": ["integer", "null"]},
                "hist_edges": {"type": "array", "items": {"type": "number"}},
                "hist_counts": {"type": "array", "items": {"type": "integer"}}}}
    measurement = {
        "type": "object", "additionalProperties": False,
        "required": ["name", "source", "stat", "value", "unit", "limits", "outcome", "detail"],
        "properties": {"name": {"type": "string"}, "source": {"type": "string"}, "stat": {"type": "string"},
                       "value": num, "unit": {"type": "string"}, "limits": {"type": "string"},
                       "outcome": {"enum": [str(o) for o in Outcome]}, "detail": {"type": "string"},
                       "worse": {"enum": ["higher", "lower", ""]}, "limit": num, "harness_ns": num}}
    bound = {"type": "object", "required": ["p99_ns", "max_ns", "parts"],
             "properties": {"p99_ns": num, "max_ns": num, "parts": {"type": "array", "items": {"type": "string"}}}}
    error = {"type": "object", "required": ["count", "early", "p50_ns", "p99_ns", "max_ns", "over"],
             "properties": {k: num for k in ("p50_ns", "p99_ns", "max_ns", "mean_ns")}
             | {k: {"type": "integer"} for k in ("count", "early", "over")}}
    harness = {
        "type": ["object", "null"], "required": ["measured", "budget", "breaches"],
        "properties": {
            "measured": {"type": "boolean"}, "note": {"type": "string"},
            "budget": {"type": "object", "required": ["p99_ns", "max_ns"],
                       "properties": {"p50_ns": {"type": ["integer", "null"]}, "p99_ns": {"type": "integer"},
                                      "max_ns": {"type": "integer"}}},
            "buses": {"type": "object", "additionalProperties": {
                "type": "object", "propertyNames": {"enum": ["delivery", "send", "broker"]},
                "additionalProperties": error}},
            "unmeasured": {"type": "array", "items": {"type": "string"}},
            "clocks": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["method", "error_bound_ns", "drift_ppm"],
                "properties": {"method": {"type": "string"}, "error_bound_ns": {"type": "integer"},
                               "drift_ppm": {"type": "number"}, "resolution_ns": {"type": "integer"},
                               "period_ns": {"type": ["integer", "null"]}, "frames": {"type": "integer"},
                               "fitted": {"type": "boolean"}}}},
            "replay": {"type": ["object", "null"], "properties": {
                "p50_ns": num, "p99_ns": num, "max_ns": num,
                **{k: {"type": "integer"} for k in ("over", "early", "unseen", "sent")}}},
            "host": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "cpu_some_avg10": num, "loadavg": {"type": "array", "items": {"type": "number"}},
                "cpus": {"type": ["integer", "null"]}}}},
            "breaches": {"type": "array", "items": {"type": "string"}}}}
    bench = {
        "type": "object", "additionalProperties": False,
        # warnings added within version 1, power_cycled within version 2
        "required": [f.name for f in fields(BenchResult) if f.name not in ("warnings", "power_cycled")],
        "properties": {
            "name": {"type": "string"}, "verdict": {"enum": [str(v) for v in Verdict]}, "repeat": {"type": "integer"},
            "rig": {"type": "string"}, "dir": {"type": "string"}, "started_utc": {"type": "string"},
            "duration_s": {"type": "number"}, "error": {"type": ["string", "null"]},
            "error_kind": {"type": ["string", "null"]}, "phase": {"type": ["string", "null"]},
            "measurements": {"type": "array", "items": measurement},
            "probes": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["stats", "duplicates"],
                "properties": {"stats": stats, "duplicates": {"type": "integer"}, "unit": {"const": "ns"},
                               "harness": bound}}},
            "chains": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["stats", "hops"],
                "properties": {"stats": stats, "hops": {"type": "object", "additionalProperties": stats},
                               "harness": bound}}},
            "replay": {"type": ["object", "null"]},
            "harness": harness,
            "files": {"type": "object"},
            "flaky": {"type": "boolean"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "power_cycled": {"type": "array", "items": {"type": "string"}}}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"hil results.json, version {SCHEMA_VERSION}",
        "type": "object",
        "required": ["schema", "version", "verdict", "exit_code", "counts", "suite", "rig", "benches"],
        "properties": {
            "schema": {"const": "hil-results"}, "version": {"const": SCHEMA_VERSION},
            "verdict": {"enum": [str(v) for v in Verdict]}, "exit_code": {"enum": [0, 1, 3]},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "suite": {"type": "string"}, "rig": {"type": "string"}, "suite_path": {"type": "string"},
            "rig_path": {"type": "string"}, "run_dir": {"type": "string"}, "started_utc": {"type": "string"},
            "duration_s": {"type": "number"}, "host": {"type": "string"}, "hil_version": {"type": "string"},
            "stack": {"type": "object", "additionalProperties": {"type": "string"}}, "run_id": {"type": "string"},
            "regressions": {"type": "array", "items": {"type": "object"}},
            "selected": {"type": ["array", "null"], "items": {"type": "string"}},
            "stacks_replaced": {"type": "object", "additionalProperties": {"type": "string"}},
            "benches": {"type": "array", "items": bench}},
    }
