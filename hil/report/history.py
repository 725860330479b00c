"""The history database: every run, bench and measurement in one SQLite file, for trends and
regression flags night over night.

Default location: ``$HIL_HISTORY``, else ``$XDG_DATA_HOME/hil/history.sqlite`` (``~/.local/share``
when unset); ``--history PATH`` chooses another. A **regression** is a measurement of a run that moved
towards its limit (the ``worse`` direction) by more than its normal spread, compared with the
previous passing run of the same suite on the same rig; the spread is 3 standard deviations over
the last passing runs (at least 2 %, or 5 % of the value with fewer than three runs to go by).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.bench.results import PASS, SuiteResult

SPREAD_RUNS = 10
SIGMAS = 3.0
MIN_RELATIVE = 0.02
FEW_RUNS_RELATIVE = 0.05

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, suite TEXT NOT NULL, rig TEXT NOT NULL, started_utc TEXT NOT NULL,
    duration_s REAL, verdict TEXT NOT NULL, exit_code INTEGER, host TEXT, stack TEXT,
    stack_version TEXT, run_dir TEXT, hil_version TEXT);
CREATE TABLE IF NOT EXISTS benches (
    run_id TEXT NOT NULL REFERENCES runs(id), bench TEXT NOT NULL, repeat INTEGER NOT NULL,
    verdict TEXT NOT NULL, duration_s REAL, error TEXT, flaky INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, bench, repeat));
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL REFERENCES runs(id), bench TEXT NOT NULL, repeat INTEGER NOT NULL,
    name TEXT NOT NULL, value REAL, unit TEXT, outcome TEXT NOT NULL, limits TEXT, worse TEXT,
    PRIMARY KEY (run_id, bench, repeat, name));
CREATE INDEX IF NOT EXISTS runs_by_suite ON runs (suite, rig, started_utc);
"""


def default_path() -> Path:
    if os.environ.get("HIL_HISTORY"):
        return Path(os.environ["HIL_HISTORY"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hil" / "history.sqlite"


@dataclass(frozen=True)
class Point:
    """One measurement value in one run."""

    run_id: str
    started_utc: str
    value: float | None
    outcome: str


class History:
    """A connection to the history database (created on first use)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------

    def record(self, run: SuiteResult) -> None:
        """Store ``run`` (its ``run_id`` must be set)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (
                run.run_id, run.suite, run.rig, run.started_utc, run.duration_s, run.verdict, run.exit_code,
                run.host, ", ".join(run.stack), ", ".join(run.stack.values()), run.run_dir, run.hil_version))
            for b in run.benches:
                self.db.execute("INSERT OR REPLACE INTO benches VALUES (?,?,?,?,?,?,?)",
                                (run.run_id, b.name, b.repeat, b.verdict, b.duration_s, b.error, int(b.flaky)))
                self.db.executemany("INSERT OR REPLACE INTO measurements VALUES (?,?,?,?,?,?,?,?,?)", [
                    (run.run_id, b.name, b.repeat, m.name, m.value, m.unit, m.outcome, m.limits, m.worse)
                    for m in b.measurements])

    # -- reading ---------------------------------------------------------------------------------

    def runs(self, suite: str | None = None, rig: str | None = None, last: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if suite:
            sql, args = sql + " AND suite = ?", [*args, suite]
        if rig:
            sql, args = sql + " AND rig = ?", [*args, rig]
        cur = self.db.execute(sql + " ORDER BY started_utc DESC, rowid DESC LIMIT ?", [*args, last])
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def find_run(self, ref: str) -> dict[str, Any] | None:
        """A run by id or unique id prefix."""
        rows = self.db.execute("SELECT id FROM runs WHERE id LIKE ? || '%'", (ref,)).fetchall()
        if len(rows) != 1:
            return None
        return next(r for r in self.runs(last=10**9) if r["id"] == rows[0][0])

    def measurements(self, run_id: str, with_worse: bool = False) -> dict[tuple[str, str], tuple]:
        """(bench, measurement) → (value, unit, outcome[, worse]) of one run (first repeat)."""
        rows = self.db.execute("SELECT bench, name, value, unit, outcome, worse FROM measurements "
                               "WHERE run_id = ? AND repeat = 0 ORDER BY rowid", (run_id,))
        return {(b, n): (v, u, o, w) if with_worse else (v, u, o) for b, n, v, u, o, w in rows}

    def trend(self, suite: str, rig: str | None = None, last: int = 20) -> dict[tuple[str, str], list[Point]]:
        """(bench, measurement) → values over the last runs of ``suite``, oldest first."""
        runs = list(reversed(self.runs(suite, rig, last)))
        out: dict[tuple[str, str], list[Point]] = {}
        for run in runs:
            for key, (value, _, outcome) in self.measurements(run["id"]).items():
                out.setdefault(key, []).append(Point(run["id"], run["started_utc"], value, outcome))
        return out

    def regressions(self, run: SuiteResult) -> list[dict[str, Any]]:
        """Measurements of ``run`` that moved towards their limit beyond the normal spread, against
        the previous passing run of the same suite on the same rig (``run`` need not be stored)."""
        passing = [r for r in self.runs(run.suite, run.rig, last=SPREAD_RUNS * 5)
                   if r["verdict"] == PASS and r["id"] != run.run_id][:SPREAD_RUNS]
        if not passing:
            return []
        previous = self.measurements(passing[0]["id"])
        history = [self.measurements(r["id"]) for r in passing]
        out = []
        for b in run.benches:
            if b.repeat:
                continue
            for m in b.measurements:
                key = (b.name, m.name)
                if m.value is None or not m.worse or key not in previous or previous[key][0] is None:
                    continue
                before = previous[key][0]
                values = [h[key][0] for h in history if key in h and h[key][0] is not None]
                allowed = _allowed_change(before, values)
                change = (m.value - before) if m.worse == "higher" else (before - m.value)
                if change > allowed:
                    out.append({"bench": b.name, "measurement": m.name, "value": m.value, "previous": before,
                                "previous_run": passing[0]["id"], "allowed": allowed, "unit": m.unit,
                                "message": f"{m.value:.6g} {m.unit} vs {before:.6g} {m.unit} in run "
                                           f"{passing[0]['id']} ({m.worse} is worse; normal spread "
                                           f"±{allowed:.3g})".replace("  ", " ")})
        return out


def _allowed_change(before: float, values: list[float]) -> float:
    floor = abs(before) * MIN_RELATIVE
    if len(values) < 3:
        return max(abs(before) * FEW_RUNS_RELATIVE, 1e-12)
    return max(SIGMAS * statistics.stdev(values), floor, 1e-12)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """Values as block characters scaled between their min and max (a gap for no value)."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    lo, hi = min(known), max(known)
    span = hi - lo or 1.0
    return "".join(" " if v is None else SPARKS[min(len(SPARKS) - 1, int((v - lo) / span * len(SPARKS)))]
                   for v in values)
