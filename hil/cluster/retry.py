"""Retries for infrastructure errors only: a bench whose verdict is ``error`` runs again (at most N
more times); a ``fail`` is a real result and never retried. A bench that passes on a retry is
flagged ``flaky``, and keeps in ``error`` what went wrong before, so results, JUnit and history
show it. Each failed attempt's folder is kept beside the bench's as ``<bench>.attempt-<n>`` (on a
worker, the dispatched task sets it aside there)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hil.results import BenchResult
from hil.values import Verdict

if TYPE_CHECKING:
    from hil.bench import BenchOptions


def with_retries(run_bench: Callable[..., BenchResult], retries: int,
                 on_retry: Callable[[BenchResult, int], None] | None = None) -> Callable[..., BenchResult]:
    """``run_bench`` (same signature) that reruns a bench while its verdict is ``error``."""
    if retries <= 0:
        return run_bench

    def run(rig_path: str | Path, suite_path: str | Path, bench: str, run_dir: Path,
            options: BenchOptions | None = None) -> BenchResult:
        result = run_bench(rig_path, suite_path, bench, run_dir, options)
        errors: list[str] = []
        while result.verdict == Verdict.ERROR and len(errors) < retries:
            errors.append(f"attempt {len(errors) + 1}: {result.error}")
            set_aside(Path(result.dir))
            if on_retry is not None:
                on_retry(result, len(errors))
            result = run_bench(rig_path, suite_path, bench, run_dir, options)
        if errors and result.verdict == Verdict.PASS:
            result.flaky = True
            result.error = f"passed on attempt {len(errors) + 1} after an infrastructure error; " + "; ".join(errors)
        return result

    return run


def set_aside(bench_dir: Path) -> None:
    """Move an earlier attempt's bench folder (when it is on this host) to ``<bench>.attempt-<n>``,
    so the next attempt starts clean and the failed one's consoles and recording are kept."""
    if not (bench_dir.is_absolute() and bench_dir.is_dir()):
        return
    n = 1
    while bench_dir.with_name(f"{bench_dir.name}.attempt-{n}").exists():
        n += 1
    bench_dir.rename(bench_dir.with_name(f"{bench_dir.name}.attempt-{n}"))
