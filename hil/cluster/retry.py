"""Retries for infrastructure errors only: a bench whose verdict is ``error`` runs again (at most N
more times); a ``fail`` is a real result and never retried. A bench that passes on a retry is
flagged ``flaky``, and keeps in ``error`` what went wrong before, so results, JUnit and history
show it. Each failed attempt's folder is kept beside the bench's as ``<bench>.attempt-<n>``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.bench.results import ERROR, PASS, BenchResult


def with_retries(run_bench: Callable[..., BenchResult], retries: int,
                 on_retry: Callable[[BenchResult, int], None] | None = None) -> Callable[..., BenchResult]:
    """``run_bench`` (same signature) that reruns a bench while its verdict is ``error``."""
    if retries <= 0:
        return run_bench

    def run(rig_path: Any, suite_path: Any, bench: str, run_dir: Path, options: Any = None) -> BenchResult:
        result = run_bench(rig_path, suite_path, bench, run_dir, options)
        errors: list[str] = []
        while result.verdict == ERROR and len(errors) < retries:
            errors.append(f"attempt {len(errors) + 1}: {result.error}")
            _keep_attempt(Path(result.dir), len(errors))
            if on_retry is not None:
                on_retry(result, len(errors))
            result = run_bench(rig_path, suite_path, bench, run_dir, options)
        if errors and result.verdict == PASS:
            result.flaky = True
            result.error = f"passed on attempt {len(errors) + 1} after an infrastructure error; " + "; ".join(errors)
        return result

    return run


def _keep_attempt(bench_dir: Path, attempt: int) -> None:
    """Move a failed attempt's folder aside (when it is on this host) so the retry starts clean."""
    if bench_dir.is_absolute() and bench_dir.is_dir():
        bench_dir.rename(bench_dir.with_name(f"{bench_dir.name}.attempt-{attempt}"))
