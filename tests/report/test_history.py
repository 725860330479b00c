"""The history database: runs recorded, trends, and regressions judged against the noise of the
comparable earlier runs (never a --bench subset, never a failed or unjudged bench, never another
unit), with a floor tied to the limit."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from hil.report.history import History, sparkline

from .results_factory import harness_error, suite_result


@pytest.fixture
def db(tmp_path):
    with History(tmp_path / "h.sqlite") as h:
        yield h


def _record(db, values, **kw):
    for i, v in enumerate(values):
        db.record(suite_result(f"r{i}", p99=v, started=f"2026-11-{10 + i:02d}T23:00:00+00:00", **kw))


def test_trend_oldest_first_and_runs_newest_first(db):
    _record(db, [4.0, 4.1, 12.0, 4.2])
    assert [r["id"] for r in db.runs("aeb")] == ["r3", "r2", "r1", "r0"]
    points = db.trend("aeb")[("approach", "p99")]
    assert [p.value for p in points] == [4.0, 4.1, 12.0, 4.2]
    assert [p.outcome for p in points] == ["pass", "pass", "fail", "pass"]
    assert db.find_run("r2")["verdict"] == "fail"
    assert db.find_run("r") is None  # ambiguous prefix


def test_a_change_beyond_the_noise_of_earlier_runs_is_flagged(db):
    _record(db, [4.0, 4.1, 3.9, 4.0, 4.05, 3.95])
    flagged = db.regressions(suite_result("new", p99=5.6))
    assert [(r["bench"], r["measurement"], r["baseline"], r["runs"]) for r in flagged] == [("approach", "p99", 4.0, 6)]
    assert flagged[0]["message"].startswith("5.6 ms vs median 4 ms of 6 earlier runs (higher is worse; allowed ±")
    assert db.regressions(suite_result("better", p99=3.0)) == []


def test_a_change_smaller_than_the_floor_of_the_limit_is_never_a_regression(db):
    _record(db, [4.0, 4.0, 4.0, 4.0])  # no noise at all: only the floor (5 % of the 10 ms limit) holds
    assert db.regressions(suite_result("new", p99=4.45)) == []
    assert [r["allowed"] for r in db.regressions(suite_result("new", p99=4.55))] == [pytest.approx(0.5)]


def test_one_outlier_does_not_widen_the_spread(db):
    _record(db, [4.0, 4.1, 3.9, 9.5, 4.0, 4.05])  # a noisy night: the median and MAD shrug it off
    assert [r["measurement"] for r in db.regressions(suite_result("new", p99=5.6))] == ["p99"]


def test_failed_benches_are_not_the_baseline(db):
    _record(db, [9.0, 9.1, 8.9, 11.0, 11.0, 11.0])  # the last three failed (11 > 10)
    assert db.regressions(suite_result("new", p99=9.2)) == []
    assert db.regressions(suite_result("new", p99=9.9))[0]["baseline"] == 9.0


def test_a_bench_subset_run_never_becomes_the_baseline(db):
    _record(db, [4.0, 4.1, 3.9])
    for i in range(5):  # later --bench runs, much higher
        db.record(suite_result(f"s{i}", p99=8.0, started=f"2026-12-0{i + 1}T23:00:00+00:00", selected=["approach"]))
    flagged = db.regressions(suite_result("new", p99=8.0))
    assert [(r["baseline"], r["runs"]) for r in flagged] == [(4.0, 3)]
    # and a subset run itself is still checked against the whole-suite runs
    assert db.regressions(suite_result("sub", p99=8.0, selected=["approach"]))[0]["baseline"] == 4.0


def test_with_fewer_than_three_comparable_runs_nothing_is_flagged(db):
    _record(db, [4.0, 4.0])
    assert db.regressions(suite_result("new", p99=9.0)) == []


def test_other_units_and_unjudged_benches_are_not_compared(db):
    _record(db, [4.0, 4.1, 3.9])
    in_us = suite_result("us", p99=4000.0)
    in_us.benches[0].measurements = [replace(m, unit="us") for m in in_us.benches[0].measurements]
    assert db.regressions(in_us) == []
    overloaded = suite_result("x", extra=[harness_error()])
    overloaded.benches = [replace(overloaded.benches[1], name="approach")]
    assert db.regressions(overloaded) == []


def test_no_history_no_regressions(db):
    assert db.regressions(suite_result()) == []


def test_a_database_from_an_older_hil_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript("""
            CREATE TABLE runs (id TEXT PRIMARY KEY, suite TEXT NOT NULL, rig TEXT NOT NULL, started_utc TEXT NOT NULL,
                duration_s REAL, verdict TEXT NOT NULL, exit_code INTEGER, host TEXT, stack TEXT, stack_version TEXT,
                run_dir TEXT, hil_version TEXT);
            CREATE TABLE measurements (run_id TEXT NOT NULL, bench TEXT NOT NULL, repeat INTEGER NOT NULL,
                name TEXT NOT NULL, value REAL, unit TEXT, outcome TEXT NOT NULL, limits TEXT, worse TEXT,
                PRIMARY KEY (run_id, bench, repeat, name));
            INSERT INTO runs VALUES ('old', 'aeb', 'sim', '2026-01-01T00:00:00+00:00', 1, 'pass', 0, 'h', '', '', '',
                                     '0');
        """)
    old.close()
    with History(path) as db:
        db.record(suite_result("new"))
        assert {r["id"]: r["selected"] for r in db.runs("aeb")} == {"new": None, "old": None}


def test_sparkline():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, None, 5]) == "▁ ▁"
    assert sparkline([None]) == " "


def test_default_location_follows_xdg(tmp_path, monkeypatch):
    from hil.report.history import default_path

    monkeypatch.delenv("HIL_HISTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "hil" / "history.sqlite"
    monkeypatch.setenv("HIL_HISTORY", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"
