"""Run a suite: its benches (selected, repeated, stopped at the first failure on request), then the
reports and the history row. The bench runner is a parameter, so the cluster dispatcher can run
benches on the lab host that owns the rig; the rig lease is a parameter too."""

from __future__ import annotations

import contextlib
import platform
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hil import __version__
from hil.bench.plan import plan_suite
from hil.results import BenchResult, SuiteResult
from hil.bench.runner import BenchEvent, BenchOptions, Interrupted, run_bench, utc_now
from hil.clock import now_ns
from hil.errors import UsageError
from hil.lifecycle.signals import shielded, stopped
from hil.session.folders import run_folder
from hil.spec.rig import Rig
from hil.spec.suite import ReportSpec
from hil.values import Verdict


@dataclass
class SuiteOptions:
    benches: list[str] | None = None
    stacks: dict[str, str] = field(default_factory=dict)  # the suite's stacks replaced: OLD → NEW (--stack)
    repeat: int = 1
    fail_fast: bool = False
    out: Path | None = None
    history: Path | None = None  # None: the default history database
    record_history: bool = True
    run_bench: Callable[..., BenchResult] = run_bench
    lease: Callable[[Rig], AbstractContextManager] | None = None
    on_event: Callable[[BenchEvent], None] | None = None
    on_result: Callable[[BenchResult], None] | None = None


def run_suite(rig_path: str | Path, suite_path: str | Path, options: SuiteOptions | None = None) -> SuiteResult:
    """Run the suite on the rig; write results.json, junit.xml and report.html into the run folder
    and record the run in the history. Raises SpecError / UsageError before anything runs."""
    options = options or SuiteOptions()
    if options.repeat < 1:
        raise UsageError(f"expected --repeat ≥ 1, got {options.repeat}")
    plans = plan_suite(rig_path, suite_path, options.benches, options.stacks)
    rig, suite = plans[0].rig, plans[0].suite
    started = datetime.now(UTC)
    run_dir = run_folder(suite.name, options.out, started).resolve()
    if (run_dir / "results.json").exists():
        raise UsageError(f"{run_dir} already holds a run (results.json); choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    stacks = {p.stack.name: p.stack.version for p in plans if p.stack is not None}
    chosen = [p.bench.name for p in plans]
    result = SuiteResult(
        suite=suite.name, rig=rig.name, suite_path=str(Path(suite_path).resolve()),
        rig_path=str(Path(rig_path).resolve()), run_dir=str(run_dir), started_utc=utc_now(),
        host=platform.node(), hil_version=__version__, run_id=f"{started:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
        stack=stacks, selected=None if len(chosen) == len(suite.benches) else chosen,
        stacks_replaced=dict(options.stacks))
    start = now_ns()
    lease = options.lease(rig) if options.lease else contextlib.nullcontext()
    completed = reported = False

    def report(record: bool) -> None:
        nonlocal reported
        result.duration_s = (now_ns() - start) / 1e9
        with shielded():  # a stop now waits for the reports: they are whole, or not there at all
            _finish(result, run_dir, options, record=record, reports=suite.reports)
            reported = True

    try:
        try:
            with lease:
                _run_benches(rig_path, suite_path, chosen, run_dir, options, result)
            completed = True
        finally:  # an interrupted run still gets its reports, but never becomes a history baseline
            report(record=completed and options.record_history)
    except KeyboardInterrupt:  # the first stop landed in the finally before the shield went up;
        if not reported:  # any later one is only noted, so this writing runs to its end
            report(record=False)
        raise
    return result


def _run_benches(rig_path: str | Path, suite_path: str | Path, names: list[str], run_dir: Path,
                 options: SuiteOptions, result: SuiteResult) -> None:
    stop = None
    for repeat in range(options.repeat):
        for name in names:
            if stop is not None:
                bench = BenchResult(name, Verdict.SKIPPED, repeat, result.rig, error=f"--fail-fast: {stop} did not pass")
            else:
                try:
                    bench = options.run_bench(rig_path, suite_path, name, run_dir,
                                              BenchOptions(repeat=repeat, on_event=options.on_event,
                                                           stacks=options.stacks))
                except Interrupted as exc:
                    exc.result.dir = Path(exc.result.dir).name
                    result.benches.append(exc.result)
                    raise
                except KeyboardInterrupt as exc:  # a stop before the bench's runner could catch it
                    result.benches.append(BenchResult.error_result(
                        name, f"{stopped(exc)} before the bench started", repeat=repeat, rig=result.rig,
                        error_kind="KeyboardInterrupt", phase="plan"))
                    raise
                bench.dir = Path(bench.dir).name  # bench folders sit in the run folder (also remote ones)
                if options.fail_fast and bench.verdict in (Verdict.FAIL, Verdict.ERROR):
                    stop = bench.key
            result.benches.append(bench)
            if options.on_result is not None:
                options.on_result(bench)


def _finish(result: SuiteResult, run_dir: Path, options: SuiteOptions, record: bool,
            reports: Sequence[ReportSpec]) -> None:
    """Regressions against the history, the history row, the report files."""
    from hil.report import write_reports
    from hil.report.history import History

    if record and result.benches:
        with History(options.history) as history:
            result.regressions = history.regressions(result)
            history.record(result)
    write_reports(result, run_dir, reports)
