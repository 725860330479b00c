"""Judge a recording made earlier (or elsewhere) with a suite's bench: no rig, no targets."""

from __future__ import annotations

import platform
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hil import __version__
from hil.bench.plan import bench_database
from hil.results import BenchResult, SuiteResult
from hil.bench.runner import utc_now
from hil.bench.verdict import judge_recording
from hil.clock import now_ns
from hil.errors import UsageError
from hil.recording.schema import METADATA_NAME
from hil.spec import load_suite
from hil.values import Verdict


def analyse_offline(recording: Path, suite_path: str | Path, bench_name: str, out: Path,
                    channel_map: dict[str, str] | None = None) -> SuiteResult:
    """Analyse ``recording`` (a hil MCAP recording or any CAN log python-can reads, its channels
    renamed by ``channel_map``) as bench ``bench_name`` of the suite; write the reports into ``out``."""
    from hil.report import write_reports

    suite_file = load_suite(suite_path)
    suite = suite_file.model
    index = next((i for i, b in enumerate(suite.benches) if b.name == bench_name), None)
    if index is None:
        raise UsageError(f"suite {suite.name!r} has no bench {bench_name!r}; it has: "
                         f"{', '.join(b.name for b in suite.benches)}")
    bench = suite.benches[index]
    db, problems = bench_database(suite, index)
    if problems:
        raise suite_file.error(problems)
    out = out.resolve()
    bench_dir = out / bench.name
    bench_dir.mkdir(parents=True, exist_ok=True)
    start = now_ns()
    result = BenchResult(bench.name, Verdict.ERROR, dir=bench.name, started_utc=utc_now())
    judge_recording(bench, suite.harness_budget(bench), db, Path(recording), bench_dir, result, channel_map)
    result.duration_s = (now_ns() - start) / 1e9
    result.files["recording"] = str(Path(recording).resolve())
    run = SuiteResult(suite=suite.name, rig=recorded_rig(Path(recording)), suite_path=str(Path(suite_path).resolve()), run_dir=str(out),
                      started_utc=result.started_utc, duration_s=result.duration_s, host=platform.node(),
                      hil_version=__version__, benches=[result],
                      selected=None if len(suite.benches) == 1 else [bench.name],
                      run_id=f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}")
    write_reports(run, out, suite.reports)
    return run


def recorded_rig(recording: Path) -> str:
    """The rig a hil recording was made on (its metadata says), or "" for any other log or a
    recording cut before its summary."""
    if recording.suffix.lower() != ".mcap":
        return ""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader

    try:
        with open(recording, "rb") as f:
            return next((m.metadata.get("rig", "") for m in make_reader(f).iter_metadata()
                         if m.name == METADATA_NAME), "")
    except (OSError, McapError, ValueError):
        return ""
