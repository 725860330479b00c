"""Two runs side by side: each measurement's value in A and B, the change, and whether it moved
towards its limit (worse) or away from it (better) — with a warning when the runs are not alike
(other suites, other rigs, a measurement in other units, a --bench subset)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hil.errors import UsageError


@dataclass(frozen=True)
class Run:
    label: str
    values: Mapping[tuple[str, str], tuple[float | None, str, str, str]]  # → value, unit, outcome, worse
    suite: str = ""
    rig: str = ""
    selected: list[str] | None = None  # the --bench subset it ran; None: the whole suite


@dataclass(frozen=True)
class Row:
    bench: str
    name: str
    a: float | None
    b: float | None
    unit: str
    outcome_a: str | None
    outcome_b: str | None
    worse_direction: str
    other_unit: str = ""  # A's unit where it differs from B's: the values are not compared

    @property
    def change(self) -> float | None:
        return None if self.a is None or self.b is None or self.other_unit else self.b - self.a

    @property
    def relative(self) -> float | None:
        return None if self.change is None or not self.a else self.change / abs(self.a)

    @property
    def worse(self) -> bool:
        c = self.change
        return c is not None and c != 0 and ((self.worse_direction == "higher" and c > 0) or (self.worse_direction == "lower" and c < 0))

    @property
    def better(self) -> bool:
        return bool(self.change) and bool(self.worse_direction) and not self.worse


def load_run(ref: str, history: Path | None = None) -> Run:
    """A run folder, a results.json, or a run id (or unique prefix) in the history database."""
    from hil.report import load_results
    from hil.report.history import History

    path = Path(ref)
    if path.exists():
        r = load_results(path)
        values = {(b.name, m.name): (m.value, m.unit, m.outcome, m.worse)
                  for b in r.benches if b.repeat == 0 for m in b.measurements}
        return Run(f"{r.suite} on {r.rig}, {r.started_utc} ({path})", values, r.suite, r.rig, r.selected)
    with History(history) as db:
        run = db.find_run(ref)
        if run is None:
            raise UsageError(f"{ref!r} is neither a run folder nor a results.json, nor one run id in {db.path}")
        values = {k: (v, u, o, w) for k, (v, u, o, w) in db.measurements(run["id"], with_worse=True).items()}
    selected = None if run["selected"] is None else json.loads(run["selected"])
    return Run(f"{run['suite']} on {run['rig']}, {run['started_utc']} ({run['id']})", values, run["suite"],
               run["rig"], selected)


def compare_runs(a: Run, b: Run) -> list[Row]:
    keys = list(dict.fromkeys([*a.values, *b.values]))
    rows = []
    for key in keys:
        va, ua, oa, wa = a.values.get(key, (None, None, None, ""))
        vb, ub, ob, wb = b.values.get(key, (None, None, None, ""))
        other = ua if ua is not None and ub is not None and ua != ub else ""
        rows.append(Row(key[0], key[1], va, vb, (ub if ub is not None else ua) or "", oa, ob, wb or wa, other))
    return rows


def warnings(a: Run, b: Run, rows: list[Row]) -> list[str]:
    """Why the two runs may not compare like with like."""
    out = []
    for what, x, y in (("suites", a.suite, b.suite), ("rigs", a.rig, b.rig)):
        if x != y:
            out.append(f"the runs are of different {what}: {x or '(none)'} (A) and {y or '(none)'} (B)")
    for label, run in (("A", a), ("B", b)):
        if run.selected is not None:
            out.append(f"{label} ran only some benches (--bench {', '.join(run.selected)})")
    out += [f"{r.bench}/{r.name} is in {r.other_unit!r} in A and {r.unit!r} in B: not compared"
            for r in rows if r.other_unit]
    return out
