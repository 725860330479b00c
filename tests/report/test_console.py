"""The console summary, exactly: verdict table, harness error, what failed (or was not judged) and
why, regressions, the run's verdict."""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from hil.report.console import summary

from .results_factory import failing_and_error, harness_error, suite_result

EXPECTED = """\
suite aeb on rig sim
┏━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ bench      ┃ verdict ┃  time ┃ measurements ┃ note                                               ┃
┡━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ approach   │ pass    │ 3.5 s │          2/2 │                                                    │
│ cut-in     │ fail    │ 1.0 s │          1/2 │ failed: p99                                        │
│ dropout    │ error   │ 0.5 s │            — │ ready: target 'hpc': component 'planner' exited    │
│            │         │       │              │ with code 1 during start-up                        │
│ cruise     │ skipped │ 0.0 s │            — │ --fail-fast: dropout did not pass                  │
│ overloaded │ error   │ 2.0 s │   1 unjudged │ analyse: host overloaded, harness over budget:     │
│            │         │       │              │ delivery error p99 3.2 ms on bus chassis, budget 1 │
│            │         │       │              │ ms (host load — inject start: CPU pressure 87 %,   │
│            │         │       │              │ load 4.10 on 2 CPUs; inject end: CPU pressure 87   │
│            │         │       │              │ %, load 4.10 on 2 CPUs)                            │
└────────────┴─────────┴───────┴──────────────┴────────────────────────────────────────────────────┘
harness error (µs: p50 / p99 / max; over: frames over the p99 budget)
┏━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┓
┃ bench      ┃ bus     ┃            delivery ┃      send ┃    broker ┃ over ┃              budget ┃
┡━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━━━━━┩
│ approach   │ chassis │        30 / 85 / 85 │ 4 / 6 / 6 │ 7 / 9 / 9 │    0 │ p99 1 ms, max 20 ms │
│ overloaded │ chassis │ 201 / 3,200 / 3,200 │ 4 / 5 / 5 │ 7 / 9 / 9 │   10 │ p99 1 ms, max 20 ms │
└────────────┴─────────┴─────────────────────┴───────────┴───────────┴──────┴─────────────────────┘
cut-in
  fail p99 = 12.5 ms  limits ≤ 10 ms — 12.5 is not ≤ 10
overloaded
  unjudged p99 = 131 ms  limits ≤ 100 ms — not judged, the harness broke its budget (would be fail:
131 is not ≤ 100)
regression approach/p99: 4.9 ms vs median 4.05 ms of 5 earlier runs (higher is worse; allowed ±0.5)
ERROR (1 pass, 1 fail, 2 error, 1 skipped) in 9.0 s — /tmp/run
"""


def test_summary_exact_output():
    result = suite_result(extra=[*failing_and_error(), harness_error()])
    result.regressions = [{"bench": "approach", "measurement": "p99",
                           "message": "4.9 ms vs median 4.05 ms of 5 earlier runs (higher is worse; allowed ±0.5)"}]
    console = Console(width=100, no_color=True, record=True, highlight=False)
    console.print(summary(result))
    assert "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n" == EXPECTED


def test_latency_table_lists_probes_and_chains_in_ms_with_their_harness_error():
    result = suite_result()
    stats = {"count": 175, "missed": 1, "p50": 829_453.0, "p99": 2_723_449.5, "max": None}
    result.benches[0].probes = {"radar": {"stats": stats, "duplicates": 0,
                                          "harness": {"p99_ns": 91_000, "max_ns": 400_000, "parts": []}}}
    result.benches[0].chains = {"e2e": {"stats": stats, "hops": {},
                                        "harness": {"p99_ns": None, "max_ns": None, "parts": ["send on lab"]}},
                                "old": {"stats": stats, "hops": {}}}
    console = Console(width=100, no_color=True, record=True)
    console.print(summary(result))
    text = console.export_text()
    assert "│ approach │ radar     │   175 │      1 │ 0.829 │ 2.723 │   — │         0.091 │" in text
    assert "│ approach │ chain e2e │   175 │      1 │ 0.829 │ 2.723 │   — │  not measured │" in text
    assert "│ approach │ chain old │   175 │      1 │ 0.829 │ 2.723 │   — │             — │" in text


def test_a_bench_without_harness_figures_says_not_measured_never_zero():
    result = suite_result()
    result.benches[0].harness = {"measured": False, "note": "not measured: ...", "breaches": [],
                                 "budget": {"p99_ns": 1_000_000, "max_ns": 20_000_000}, "host": {}}
    result.benches[0].measurements = [replace(result.benches[0].measurements[0], harness_ns=None)]
    console = Console(width=120, no_color=True, record=True)
    console.print(summary(result))
    text = console.export_text()
    assert "│ approach │ —   │ not measured │" in text
    assert "± harness" not in text
