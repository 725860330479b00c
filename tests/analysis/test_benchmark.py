"""The analysis benchmark runs (quick mode) and reports its figures; timings are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys


def test_benchmark_quick_json(root):
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "analysis.py"), "--quick", "--json"],
                         capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout)
    assert result["pairs"] == 100_000 and result["quick"] is True
    for key in ("pair_next_s", "pair_counter_s", "stats_s", "numpy_stats_s"):
        assert result[key] > 0
