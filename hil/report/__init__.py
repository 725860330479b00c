"""Reports of a run: console summary, results.json, JUnit XML, HTML with plots, history database.

``write_reports(result, run_dir, reports)`` writes the files of a run folder (layout in
``docs/results.md``): results.json, junit.xml and report.html always, and the suite's ``reports``
besides. Each format is a :class:`ReportWriter` in the ``hil.report`` registry
(:mod:`hil.registry`); a plugin adds one with an entry point. ``load_results(path)`` reads a run
folder or results.json back.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from hil import registry
from hil.results import SuiteResult
from hil.errors import UsageError
from hil.spec.suite import ReportSpec

RESULTS, JUNIT, HTML = "results.json", "junit.xml", "report.html"
ALWAYS = ("results", "junit", "html")


class ReportWriter(ABC):
    """A report format (``hil.report``): writes one file (or folder) of a run into its run folder.
    ``spec`` is the suite's ``reports`` entry (None for a format written always); a plugin's
    writer carries that entry's model as ``model`` (a :class:`hil.spec.suite.ReportSpec` whose
    ``format`` is the entry point's name)."""

    model: ClassVar[type[ReportSpec]]

    def __init__(self, spec: ReportSpec | None = None):
        self.spec = spec

    @abstractmethod
    def write(self, result: SuiteResult, run_dir: Path) -> Path:
        """Write the report of ``result`` into ``run_dir``; return its path."""


class ResultsWriter(ReportWriter):
    """results.json, replaced whole: a SIGKILL leaves it complete, or not there."""

    def write(self, result: SuiteResult, run_dir: Path) -> Path:
        results = run_dir / RESULTS
        partial = results.with_name(f".{RESULTS}.partial")
        partial.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(partial, results)
        return results


class JunitWriter(ReportWriter):
    def write(self, result: SuiteResult, run_dir: Path) -> Path:
        from hil.report.junit import write_junit

        return write_junit(result, run_dir / JUNIT)


class HtmlWriter(ReportWriter):
    def write(self, result: SuiteResult, run_dir: Path) -> Path:
        from hil.report.html import write_html

        return write_html(result, run_dir, run_dir / HTML)


def write_reports(result: SuiteResult, run_dir: Path, reports: Sequence[ReportSpec] = ()) -> dict[str, Path]:
    """results.json, junit.xml, report.html and the suite's ``reports`` into ``run_dir``; returns
    format → path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out = {name: registry.REPORTS.implementation(name)().write(result, run_dir) for name in ALWAYS}
    for spec in reports:
        if spec.format not in out:
            out[spec.format] = registry.REPORTS.implementation(spec.format)(spec).write(result, run_dir)
    return out


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
