"""The bench and suite runners (``docs/benches.md``): plain functions with picklable inputs and
results, so a Dask worker can run a bench and send the result back.

Names are imported on first use, so ``hil.bench.lease`` stays light for commands that need only it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BenchResult": "hil.results", "SuiteResult": "hil.results",
    "BenchOptions": "hil.bench.runner", "BenchEvent": "hil.bench.runner", "run_bench": "hil.bench.runner",
    "SuiteOptions": "hil.bench.suite", "run_suite": "hil.bench.suite",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hil.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
