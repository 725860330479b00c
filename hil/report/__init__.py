"""Reports of a run: console summary, results.json, JUnit XML, HTML with plots, history database.

``write_reports(result, run_dir)`` writes the files of a run folder (layout in ``docs/results.md``);
``load_results(path)`` reads a run folder or results.json back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hil.results import SuiteResult
from hil.errors import UsageError

RESULTS, JUNIT, HTML = "results.json", "junit.xml", "report.html"


def write_reports(result: SuiteResult, run_dir: Path) -> dict[str, Path]:
    """results.json, junit.xml and report.html into ``run_dir``; returns kind → path."""
    from hil.report.html import write_html
    from hil.report.junit import write_junit

    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_dir / RESULTS
    partial = results.with_name(f".{RESULTS}.partial")  # a SIGKILL leaves results.json whole, or none
    partial.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, results)
    return {"results": results, "junit": write_junit(result, run_dir / JUNIT),
            "html": write_html(result, run_dir, run_dir / HTML)}


def load_results(path: str | Path) -> SuiteResult:
    """A run folder's (or a results.json file's) results."""
    path = Path(path)
    file = path / RESULTS if path.is_dir() else path
    try:
        return SuiteResult.from_json(json.loads(file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UsageError(f"{path}: expected a run folder or a results.json file; there is no {file}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{file}: not a hil results file: {exc}") from None
