"""The history database: every run, bench and measurement in one SQLite file, for trends and
regression flags night over night.

Default location: ``$HIL_HISTORY``, else ``$XDG_DATA_HOME/hil/history.sqlite`` (``~/.local/share``
when unset); ``--history PATH`` chooses another.

A **regression** is a measurement that moved towards its limit (the ``worse`` direction) further
than the noise explains. The noise is read from the earlier runs it can be compared with — the
same suite on the same rig, whole-suite runs (a ``--bench`` subset is never a baseline), the same
bench passing, the same unit — the last :data:`BASELINE_RUNS` of them: the change from their
median must exceed :data:`SPREADS` robust spreads (1.4826 × the median absolute deviation, the
standard deviation of normal noise) and :data:`LIMIT_FLOOR` of the limit it moves towards (a change
that small is never a regression, however quiet the earlier runs were). With fewer than
:data:`MIN_RUNS` such runs the noise is unknown and nothing is flagged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.results import SuiteResult
from hil.values import Verdict

BASELINE_RUNS = 10
MIN_RUNS = 3
SPREADS = 3.0
MAD_TO_SIGMA = 1.4826
LIMIT_FLOOR = 0.05

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, suite TEXT NOT NULL, rig TEXT NOT NULL, started_utc TEXT NOT NULL,
    duration_s REAL, verdict TEXT NOT NULL, exit_code INTEGER, host TEXT, stack TEXT,
    stack_version TEXT, run_dir TEXT, hil_version TEXT, selected TEXT);
CREATE TABLE IF NOT EXISTS benches (
    run_id TEXT NOT NULL REFERENCES runs(id), bench TEXT NOT NULL, repeat INTEGER NOT NULL,
    verdict TEXT NOT NULL, duration_s REAL, error TEXT, flaky INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, bench, repeat));
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL REFERENCES runs(id), bench TEXT NOT NULL, repeat INTEGER NOT NULL,
    name TEXT NOT NULL, value REAL, unit TEXT, outcome TEXT NOT NULL, limits TEXT, worse TEXT,
    limit_value REAL, PRIMARY KEY (run_id, bench, repeat, name));
CREATE INDEX IF NOT EXISTS runs_by_suite ON runs (suite, rig, started_utc);
"""
ADDED = {"runs": {"selected": "TEXT"}, "measurements": {"limit_value": "REAL"}}  # columns newer than the table


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
        for table, columns in ADDED.items():  # a database written by an older hil gains them (NULL)
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

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
            self.db.execute("INSERT OR REPLACE INTO runs (id, suite, rig, started_utc, duration_s, verdict, exit_code, "
                            "host, stack, stack_version, run_dir, hil_version, selected) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                run.run_id, run.suite, run.rig, run.started_utc, run.duration_s, run.verdict, run.exit_code,
                run.host, ", ".join(run.stack), ", ".join(run.stack.values()), run.run_dir, run.hil_version,
                None if run.selected is None else json.dumps(run.selected)))
            for b in run.benches:
                self.db.execute("INSERT OR REPLACE INTO benches VALUES (?,?,?,?,?,?,?)",
                                (run.run_id, b.name, b.repeat, b.verdict, b.duration_s, b.error, int(b.flaky)))
                self.db.executemany("INSERT OR REPLACE INTO measurements (run_id, bench, repeat, name, value, "
                                    "unit, outcome, limits, worse, limit_value) VALUES (?,?,?,?,?,?,?,?,?,?)", [
                    (run.run_id, b.name, b.repeat, m.name, m.value, m.unit, m.outcome, m.limits, m.worse, m.limit)
                    for m in b.measurements])

    # -- reading ---------------------------------------------------------------------------------

    def runs(self, suite: str | None = None, rig: str | None = None, last: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        args: list[Any]
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
        """Measurements of ``run`` (first repeat, benches that were judged) that moved towards their
        limit beyond the noise of the comparable earlier runs (``run`` need not be stored)."""
        earlier = self._baseline(run)
        out = []
        for b in run.benches:
            if b.repeat or b.verdict not in (Verdict.PASS, Verdict.FAIL):  # an error bench's figures were not judged
                continue
            for m in b.measurements:
                values = earlier.get((b.name, m.name, m.unit), [])
                if m.value is None or not m.worse or len(values) < MIN_RUNS:
                    continue
                median = statistics.median(values)
                spread = MAD_TO_SIGMA * statistics.median(abs(v - median) for v in values)
                floor = LIMIT_FLOOR * abs(m.limit) if m.limit is not None else 0.0
                allowed = max(SPREADS * spread, floor, 1e-12)
                change = (m.value - median) if m.worse == "higher" else (median - m.value)
                if change > allowed:
                    out.append({
                        "bench": b.name, "measurement": m.name, "value": m.value, "baseline": median,
                        "runs": len(values), "spread": spread, "allowed": allowed, "unit": m.unit,
                        "message": f"{m.value:.6g} {m.unit} vs median {median:.6g} {m.unit} of {len(values)} earlier "
                                   f"runs ({m.worse} is worse; allowed ±{allowed:.3g}: {SPREADS:g} × spread "
                                   f"{spread:.3g}, at least {LIMIT_FLOOR:.0%} of the limit)".replace("  ", " ")})
        return out

    def _baseline(self, run: SuiteResult) -> dict[tuple[str, str, str], list[float]]:
        """(bench, measurement, unit) → values in the last comparable runs: whole-suite runs of the
        same suite on the same rig, where that bench passed."""
        rows = self.db.execute(
            "SELECT r.id, b.bench FROM runs r JOIN benches b ON b.run_id = r.id AND b.repeat = 0 "
            "WHERE r.suite = ? AND r.rig = ? AND r.id != ? AND r.selected IS NULL AND b.verdict = ? "
            "ORDER BY r.started_utc DESC, r.rowid DESC", (run.suite, run.rig, run.run_id, Verdict.PASS)).fetchall()
        runs: dict[str, list[str]] = {}
        for run_id, bench in rows:
            if len(runs.setdefault(bench, [])) < BASELINE_RUNS:
                runs[bench].append(run_id)
        out: dict[tuple[str, str, str], list[float]] = {}
        for bench, ids in runs.items():
            marks = ",".join("?" * len(ids))
            for name, value, unit in self.db.execute(
                    f"SELECT name, value, unit FROM measurements WHERE bench = ? AND repeat = 0 AND value IS NOT NULL "
                    f"AND run_id IN ({marks})", (bench, *ids)):
                out.setdefault((bench, name, unit), []).append(value)
        return out


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
