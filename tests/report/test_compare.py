"""`hil compare`: two runs side by side, and a warning whenever they are not alike — other suites,
other rigs, a --bench subset, a measurement in other units (whose change is then not computed)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from hil.report import write_reports
from hil.report.compare import compare_runs, load_run, warnings

from .results_factory import suite_result

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, **kw) -> Path:
    write_reports(suite_result(name, **kw), tmp_path / name)
    return tmp_path / name


def test_alike_runs_compare_without_warnings(tmp_path):
    a, b = load_run(str(_run(tmp_path, "a", p99=4.0))), load_run(str(_run(tmp_path, "b", p99=5.0)))
    rows = compare_runs(a, b)
    assert warnings(a, b, rows) == []
    p99 = next(r for r in rows if r.name == "p99")
    assert (p99.change, p99.worse) == (1.0, True)


def test_other_suites_rigs_units_and_subsets_are_warned_about(tmp_path):
    a = load_run(str(_run(tmp_path, "a", p99=4.0)))
    other = suite_result("b", p99=4000.0, selected=["approach"])
    other.suite, other.rig = "aeb-nightly", "lab-1"
    other.benches[0].measurements[0] = replace(other.benches[0].measurements[0], unit="us")
    write_reports(other, tmp_path / "b")
    b = load_run(str(tmp_path / "b"))
    rows = compare_runs(a, b)
    assert warnings(a, b, rows) == [
        "the runs are of different suites: aeb (A) and aeb-nightly (B)",
        "the runs are of different rigs: sim (A) and lab-1 (B)",
        "B ran only some benches (--bench approach)",
        "approach/p99 is in 'ms' in A and 'us' in B: not compared"]
    p99 = next(r for r in rows if r.name == "p99")
    assert (p99.change, p99.worse, p99.better) == (None, False, False)


def test_the_command_prints_the_warnings_on_stderr(tmp_path):
    a = _run(tmp_path, "a", p99=4.0)
    other = suite_result("b", p99=4.0)
    other.rig = "lab-1"
    write_reports(other, tmp_path / "b")
    env = {k: v for k, v in os.environ.items() if k != "HIL_HISTORY"} | {"NO_COLOR": "1", "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "hil", "compare", str(a), str(tmp_path / "b"), "--history",
                        str(tmp_path / "h.sqlite")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "warning: the runs are of different rigs: sim (A) and lab-1 (B)\n"
    assert "│ approach │ p99" in r.stdout
