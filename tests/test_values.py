"""Verdicts and outcomes are str enums: results keep exactly the words they always had."""

from __future__ import annotations

import json

from hil.results import BenchResult, SuiteResult
from hil.values import Outcome, Verdict


def test_verdicts_serialise_as_their_words():
    run = SuiteResult("s", "r", benches=[BenchResult("a", Verdict.FAIL), BenchResult("b", Verdict.PASS)])
    doc = json.loads(json.dumps(run.to_json()))
    assert doc["verdict"] == "fail" and doc["counts"] == {"pass": 1, "fail": 1, "error": 0, "skipped": 0}
    assert [b["verdict"] for b in doc["benches"]] == ["fail", "pass"]
    again = SuiteResult.from_json(doc)
    assert again.benches[0].verdict is Verdict.FAIL and again.verdict is Verdict.FAIL and again.exit_code == 1
    assert f"{Verdict.ERROR:7}|" == "error  |" and Outcome.MARGINAL == "marginal"
