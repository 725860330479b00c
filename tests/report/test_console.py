"""The console summary, exactly: verdict table, what failed and why, regressions, the run's verdict."""

from __future__ import annotations

from rich.console import Console

from hil.report.console import summary

from .results_factory import failing_and_error, suite_result

EXPECTED = """\
suite aeb on rig sim
┏━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ bench    ┃ verdict ┃  time ┃ measurements ┃ note                                                 ┃
┡━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ approach │ pass    │ 3.5 s │          2/2 │                                                      │
│ cut-in   │ fail    │ 1.0 s │          1/2 │ failed: p99                                          │
│ dropout  │ error   │ 0.5 s │            — │ ready: target 'hpc': component 'planner' exited with │
│          │         │       │              │ code 1 during start-up                               │
│ cruise   │ skipped │ 0.0 s │            — │ --fail-fast: dropout did not pass                    │
└──────────┴─────────┴───────┴──────────────┴──────────────────────────────────────────────────────┘
cut-in
  fail p99 = 12.5 ms  limits ≤ 10 ms — 12.5 is not ≤ 10
regression approach/p99: 4.9 ms vs 4.05 ms in run r4 (higher is worse; normal spread ±0.21)
ERROR (1 pass, 1 fail, 1 error, 1 skipped) in 9.0 s — /tmp/run
"""


def test_summary_exact_output():
    result = suite_result(extra=failing_and_error())
    result.regressions = [{"bench": "approach", "measurement": "p99",
                           "message": "4.9 ms vs 4.05 ms in run r4 (higher is worse; normal spread ±0.21)"}]
    console = Console(width=100, no_color=True, record=True, highlight=False)
    console.print(summary(result))
    assert "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n" == EXPECTED


def test_latency_table_lists_probes_and_chains_in_ms():
    result = suite_result()
    stats = {"count": 175, "missed": 1, "p50": 829_453.0, "p99": 2_723_449.5, "max": None}
    result.benches[0].probes = {"radar": {"stats": stats, "duplicates": 0}}
    result.benches[0].chains = {"e2e": {"stats": stats, "hops": {}}}
    console = Console(width=100, no_color=True, record=True)
    console.print(summary(result))
    text = console.export_text()
    assert "│ approach │ radar     │   175 │      1 │ 0.829 │ 2.723 │   — │" in text
    assert "│ approach │ chain e2e │   175 │      1 │ 0.829 │ 2.723 │   — │" in text
