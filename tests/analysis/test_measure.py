"""Measurements: limits → pass / marginal / fail; units checked; evaluation on a bench."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis import analyse, check_bench
from hil.analysis.measure import judge, limits_text, signal_unit_problem
from hil.spec.suite import Bench, Measurement

from .conftest import make_frames

MS = 1_000_000


def m(**kw) -> Measurement:
    return Measurement.model_validate({"name": "x", "probe": "p", "unit": "ms", **kw})


@pytest.mark.parametrize("limits, value, outcome", [
    ({"le": 50}, 50, "pass"),
    ({"lt": 50}, 50, "fail"),
    ({"le": 50, "marginal": 5}, 46, "marginal"),
    ({"le": 50, "marginal": 5}, 44, "pass"),
    ({"ge": 10, "marginal": 1}, 10.5, "marginal"),
    ({"gt": 10}, 9.99, "fail"),
    ({"range": [1, 2]}, 1.5, "pass"),
    ({"range": [1, 2], "marginal": 0.2}, 1.9, "marginal"),
    ({"range": [1, 2]}, 2.01, "fail"),
])
def test_limits(limits, value, outcome):
    assert judge(m(**limits), value, "probe p").outcome == outcome


def test_failure_says_why_and_no_value_fails():
    r = judge(m(le=50), 61.5, "probe p")
    assert (r.outcome, r.detail, r.limits) == ("fail", "61.5 is not ≤ 50", "≤ 50 ms")
    r = judge(m(le=50), None, "probe p")
    assert r.outcome == "fail" and "nothing to measure" in r.detail


def test_limits_text():
    assert limits_text(m(ge=1, lt=2.5)) == "< 2.5, ≥ 1 ms"
    assert limits_text(m(range=[0.5, 2], unit="bar", probe=None, signal="B.P", bus="c")) == "[0.5, 2] bar"


def test_signal_units_must_be_the_dbc_unit():
    sig = m(le=1, unit="psi", probe=None, signal="BrakeCmd.Pressure", bus="c")
    assert signal_unit_problem(sig, "bar") == "expected unit 'bar' (the DBC unit of BrakeCmd.Pressure), got 'psi'"
    assert signal_unit_problem(sig.model_copy(update={"unit": "bar"}), "bar") is None
    assert signal_unit_problem(sig.model_copy(update={"unit": "", "stat": "count"}), "bar") is None


@pytest.mark.parametrize("fields, message", [
    ({"probe": "p", "unit": "bar"}, "expected a time unit (ns, us, µs, ms, s) for a probe measurement, got 'bar'"),
    ({"probe": "p", "unit": "ms", "stat": "missed"}, "expected a count unit ('', 'frames', 'count') for a count, got 'ms'"),
    ({"frames": 0x10, "bus": "can", "unit": "s"}, "expected a count unit ('', 'frames', 'count') for a count, got 's'"),
])
def test_time_and_count_units_are_checked_in_the_suite(fields, message):
    from hil.spec.suite import Suite

    suite = Suite.model_validate({"name": "s", "defaults": {"stack": "x.yaml"}, "benches": [{
        "name": "b", "probes": [{"name": "p", "pair": "next", "from": {"bus": "can", "id": 1}, "to": {"bus": "can", "id": 2}}],
        "measurements": [{"name": "x", "le": 1, **fields}]}]})
    assert suite.problems() == [(("benches", 0, "measurements", 0, "unit"), message)]


def _bench() -> Bench:
    return Bench.model_validate({
        "name": "b",
        "probes": [{"name": "echo", "pair": "next", "window": "5ms", "budget": "2ms",
                    "from": {"bus": "can", "id": 0x100}, "to": {"bus": "can", "id": 0x200}}],
        "measurements": [
            {"name": "p99", "probe": "echo", "stat": "p99", "unit": "ms", "le": 3},
            {"name": "p99-us", "probe": "echo", "stat": "p99", "unit": "us", "le": 1500},
            {"name": "missed", "probe": "echo", "stat": "missed", "le": 0},
            {"name": "late", "probe": "echo", "stat": "deadline_misses", "le": 1},
            {"name": "pressure", "signal": "BrakeCmd.Pressure", "bus": "can", "stat": "max", "unit": "bar", "range": [10, 20]},
            {"name": "frames", "frames": 0x200, "bus": "can", "ge": 4},
            {"name": "cycle", "cycle": 0x100, "bus": "can", "stat": "mean", "unit": "ms", "range": [9.9, 10.1]},
            {"name": "replay", "replay": True, "stat": "p99", "unit": "us", "le": 100},
            {"name": "lost", "lost": True, "bus": "can", "le": 0},
        ]})


def test_bench_measurements_on_a_recording(db):
    sensor = [(i * 10 * MS, 0x100, bytes(8)) for i in range(5)]
    brake = [(i * 10 * MS + (i + 1) * MS // 2, 0x200, int(150 + i).to_bytes(2, "big") + bytes(6)) for i in range(4)]
    frames = make_frames("can", sensor + brake)
    a = analyse(_bench(), {"can": frames}, db, replay={"p99": 42_000.0}, lost={"can": 2})
    got = {r.name: (r.value, r.outcome) for r in a.measurements}
    lat = np.array([0.5, 1.0, 1.5, 2.0])
    assert got["p99"] == (pytest.approx(np.percentile(lat, 99)), "pass")
    assert got["p99-us"] == (pytest.approx(np.percentile(lat, 99) * 1000), "fail")
    assert got["missed"] == (1, "fail")  # the fifth sensor frame was never answered
    assert got["late"] == (1, "pass")  # the miss; 2.0 ms is within the 2 ms budget
    assert got["pressure"] == (pytest.approx(15.3), "pass")
    assert got["frames"] == (4, "pass")
    assert got["cycle"] == (pytest.approx(10.0), "pass")
    assert got["replay"] == (42.0, "pass")
    assert got["lost"] == (2, "fail")
    assert a.outcome == "fail"
    assert a.probes["echo"][1].count == 4
    assert "can:BrakeCmd.Pressure" in a.signals


def test_check_bench_finds_unit_and_dbc_problems_before_running(db):
    bench = Bench.model_validate({
        "name": "b",
        "probes": [{"name": "e", "pair": "next", "from": {"bus": "can", "message": "Radr"},
                    "to": {"bus": "can", "id": 0x200}}],
        "measurements": [
            {"name": "a", "signal": "BrakeCmd.Pressure", "bus": "can", "unit": "psi", "le": 1},
            {"name": "b", "signal": "BrakeCmd.Nope", "bus": "can", "le": 1},
        ]})
    problems = check_bench(bench, db)
    assert [loc for loc, _ in problems] == [("measurements", 0, "unit"), ("measurements", 1, "signal"),
                                            ("probes", 0, "from")]
    assert "no DBC message 'Radr'" in problems[2][1]


def test_chain_statistics_count_deadline_misses_against_the_chain_budget(db):
    sensor = [(i * 10 * MS, 0x100, bytes(8)) for i in range(4)]
    command = [(i * 10 * MS + 2 * MS, 0x110, bytes(8)) for i in range(4)]
    actuator = [(i * 10 * MS + 2 * MS + (i + 1) * MS, 0x200, bytes(8)) for i in range(3)]  # 3, 4, 5 ms; one missing
    bench = Bench.model_validate({
        "name": "b",
        "probes": [{"name": "a", "pair": "next", "window": "9ms", "from": {"bus": "can", "id": 0x100}, "to": {"bus": "can", "id": 0x110}},
                   {"name": "b", "pair": "next", "window": "9ms", "from": {"bus": "can", "id": 0x110}, "to": {"bus": "can", "id": 0x200}}],
        "chains": [{"name": "e2e", "probes": ["a", "b"], "budget": "4ms"}],
        "measurements": [{"name": "late", "chain": "e2e", "stat": "deadline_misses", "le": 0}]})
    a = analyse(bench, {"can": make_frames("can", sensor + command + actuator)}, db)
    _, total, hops = a.chains["e2e"]
    assert (total.count, total.missed, total.max) == (3, 1, 5 * MS)
    assert total.deadline_misses == 2  # the 5 ms chain and the broken one
    assert hops["b"].max == 3 * MS and hops["a"].max == 2 * MS
    assert a.measurements[0].outcome == "fail"
