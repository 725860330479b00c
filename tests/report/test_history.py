"""The history database: runs recorded, trends, regressions against the previous passing run."""

from __future__ import annotations

import pytest

from hil.report.history import History, sparkline

from .results_factory import suite_result


@pytest.fixture
def db(tmp_path):
    with History(tmp_path / "h.sqlite") as h:
        yield h


def _record(db, values):
    for i, v in enumerate(values):
        db.record(suite_result(f"r{i}", p99=v, started=f"2026-11-{10 + i:02d}T23:00:00+00:00"))


def test_trend_oldest_first_and_runs_newest_first(db):
    _record(db, [4.0, 4.1, 12.0, 4.2])
    assert [r["id"] for r in db.runs("aeb")] == ["r3", "r2", "r1", "r0"]
    points = db.trend("aeb")[("approach", "p99")]
    assert [p.value for p in points] == [4.0, 4.1, 12.0, 4.2]
    assert [p.outcome for p in points] == ["pass", "pass", "fail", "pass"]
    assert db.find_run("r2")["verdict"] == "fail"
    assert db.find_run("r") is None  # ambiguous prefix


def test_regression_beyond_the_normal_spread_is_flagged(db):
    _record(db, [4.0, 4.1, 3.9, 4.0, 4.05])
    flagged = db.regressions(suite_result("new", p99=4.9, started="2026-11-30T23:00:00+00:00"))
    assert [(r["bench"], r["measurement"], r["previous_run"]) for r in flagged] == [("approach", "p99", "r4")]
    assert "higher is worse" in flagged[0]["message"]
    assert db.regressions(suite_result("ok", p99=4.1)) == []
    assert db.regressions(suite_result("better", p99=3.0)) == []


def test_failed_runs_are_not_the_baseline(db):
    _record(db, [4.0, 9.0, 11.0])  # r2 failed (11 > 10): the baseline is r1 at 9.0
    flagged = db.regressions(suite_result("new", p99=9.2))
    assert flagged == []
    assert db.regressions(suite_result("new", p99=9.9))[0]["previous"] == 9.0


def test_no_history_no_regressions(db):
    assert db.regressions(suite_result()) == []


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
