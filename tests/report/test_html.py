"""The HTML report is one self-contained file that holds its plots."""

from __future__ import annotations

import base64
import re

from hil.report import write_reports

from .results_factory import failing_and_error, harness_error, suite_result, with_plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_embeds_its_plots_and_needs_nothing_outside(tmp_path):
    result = with_plots(suite_result(extra=failing_and_error()), tmp_path)
    html = write_reports(result, tmp_path)["html"].read_text()
    images = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([A-Za-z0-9+/=]+)'>", html)
    assert [alt for alt, _ in images] == ["latency p", "replay lateness"]
    for _, data in images:
        png = base64.b64decode(data)
        assert png.startswith(PNG) and len(png) > 1000
    assert "<script" not in html
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", html), "no external resources"
    assert "<link" not in html


def test_report_shows_verdicts_failures_and_errors(tmp_path):
    html = write_reports(suite_result(extra=failing_and_error()), tmp_path)["html"].read_text()
    assert "<span class='error'>ERROR</span>" in html
    assert "12.5 is not ≤ 10" in html
    assert "ready: target &#x27;hpc&#x27;: component &#x27;planner&#x27; exited with code 1" in html


def test_links_to_repeated_bench_folders_are_quoted(tmp_path):
    result = suite_result()
    result.benches[0].repeat = 1
    result.benches[0].files = {"recording": "approach#1/recording.mcap"}
    html = write_reports(result, tmp_path)["html"].read_text()
    assert "<a href='approach%231/recording.mcap'>recording</a>" in html
    assert "<section id='approach%231'>" in html and "href='#approach%231'" in html


def test_report_shows_the_harness_error_and_what_was_not_judged(tmp_path):
    result = suite_result(extra=[harness_error()])
    result.benches[0].probes = {"p": {"stats": {"count": 3, "missed": 0, "p50": 2e6, "p99": 2.5e6}, "duplicates": 0,
                                      "harness": {"p99_ns": 91_000, "max_ns": 400_000, "parts": []}}}
    html = write_reports(result, tmp_path)["html"].read_text()
    assert html.count("<h3>Harness error</h3><p>budget p99 1 ms, max 20 ms</p>") == 2
    assert "<tr><td>chassis</td><td>delivery</td><td class='num'>4</td><td class='num'>0</td>" in html
    assert "<td class='num'>0.091</td></tr>" in html  # the probe's ± harness p99, in ms
    assert "<li class='error'>delivery error p99 3.2 ms on bus chassis, budget 1 ms</li>" in html
    assert "inject start: CPU pressure 87 %, load 4.10 on 2 CPUs" in html
    assert "<td class='unjudged'>unjudged</td>" in html
