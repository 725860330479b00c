"""Suite results with known content, built the way the runner builds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hil.analysis.harness import judge_harness
from hil.analysis.measure import judge
from hil.results import BenchResult, SuiteResult
from hil.bench.verdict import unjudged
from hil.harness import ErrorHistogram
from hil.spec.suite import HarnessBudget, Measurement

LOAD = {"cpu_some_avg10": 1.5, "loadavg": [0.4, 0.5, 0.6], "cpus": 2}
BUSY = {"cpu_some_avg10": 87.0, "loadavg": [4.1, 3.2, 2.5], "cpus": 2}


def measurement(name: str, value: float | None, **limits):
    m = Measurement.model_validate({"name": name, "probe": "p", "stat": "p99", "unit": "ms", **limits})
    return judge(m, value, "probe p")


def histogram(*values_us: float) -> dict:
    h = ErrorHistogram()
    for v in values_us:
        h.add(int(v * 1000))
    return h.to_json()


def harness_events(delivery_us: list[float], send_us: list[float], load=LOAD) -> list[tuple[str, dict]]:
    """The events a recording of the emulated chassis bus carries about its harness."""
    return [("host-load", {"at": "inject-start", **load}),
            ("harness", {"buses": {"chassis": {"delivery": histogram(*delivery_us), "send": histogram(*send_us),
                                               "broker": histogram(5, 7, 9)}}}),
            ("host-load", {"at": "inject-end", **load})]


def harness_json(delivery_us: list[float], send_us: list[float], load=LOAD) -> dict:
    return judge_harness(harness_events(delivery_us, send_us, load), HarnessBudget(), ["chassis"]).to_json()


def suite_result(run_id: str = "r1", p99: float = 4.0, **kw) -> SuiteResult:
    good = BenchResult("approach", "pass", rig="sim", dir="approach", started_utc="2026-11-20T23:00:00+00:00",
                       duration_s=3.5, measurements=[measurement("p99", p99, le=10, marginal=1),
                                                     measurement("floor", 2.0, ge=1)],
                       harness=harness_json([20, 30, 40, 85], [3, 4, 6]))
    benches = [good, *kw.pop("extra", [])]
    verdict = "fail" if any(m.outcome == "fail" for m in good.measurements) else "pass"
    good.verdict = verdict
    return SuiteResult(suite="aeb", rig="sim", run_dir="/tmp/run", started_utc=kw.pop("started", "2026-11-20T23:00:00+00:00"),
                       duration_s=9.0, host="lab1", hil_version="0.1.0", stack={"aeb": "1.0.0"},
                       benches=benches, run_id=run_id, **kw)


def failing_and_error() -> list[BenchResult]:
    failed = BenchResult("cut-in", "fail", rig="sim", dir="cut-in", duration_s=1.0,
                         measurements=[measurement("p99", 12.5, le=10), measurement("floor", 3.0, ge=1)])
    broken = BenchResult("dropout", "error", rig="sim", dir="dropout", duration_s=0.5, phase="ready",
                         error="target 'hpc': component 'planner' exited with code 1 during start-up",
                         error_kind="DeployError")
    skipped = BenchResult("cruise", "skipped", rig="sim", error="--fail-fast: dropout did not pass")
    return [failed, broken, skipped]


def harness_error() -> BenchResult:
    """A bench whose harness broke its budget on a busy host: an error, its measurements unjudged."""
    harness = judge_harness(harness_events([200] * 90 + [3200] * 10, [4, 5], BUSY), HarnessBudget(), ["chassis"])
    return BenchResult("overloaded", "error", rig="sim", dir="overloaded", duration_s=2.0, phase="analyse",
                       error=harness.message(), error_kind="HarnessError", harness=harness.to_json(),
                       measurements=[unjudged(measurement("p99", 131.0, le=100))])


def with_plots(result: SuiteResult, run_dir: Path) -> SuiteResult:
    """Give the first bench two real PNG plots in its folder."""
    from hil.report.plots import latency_figure, replay_figure, _save

    plots = run_dir / "approach" / "plots"
    plots.mkdir(parents=True)
    a = _save(latency_figure("p", np.array([1_000_000, 2_000_000, 2_500_000]), 3_000_000, 1), plots / "latency-p.png")
    b = _save(replay_figure(np.array([1000, 5000, 2000])), plots / "replay.png")
    result.benches[0].files["plots"] = {"latency p": f"approach/plots/{a}", "replay lateness": f"approach/plots/{b}"}
    return result
