"""``format: csv``: one row per measurement of every bench (bench, measurement, value, unit,
outcome) in ``measurements.csv`` or the file the suite names."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from hil.report import ReportWriter
from hil.spec.suite import ReportSpec


class CsvReportSpec(ReportSpec):
    format: Literal["csv"]
    file: str = "measurements.csv"
    delimiter: Literal[",", ";", "\t"] = ","


class CsvReport(ReportWriter):
    model = CsvReportSpec

    def write(self, result, run_dir: Path) -> Path:
        spec = self.spec or CsvReportSpec(format="csv")
        path = run_dir / spec.file
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f, delimiter=spec.delimiter)
            out.writerow(["bench", "measurement", "value", "unit", "outcome"])
            for bench in result.benches:
                for m in bench.measurements:
                    out.writerow([bench.name, m.name, "" if m.value is None else repr(m.value), m.unit, m.outcome])
        return path
