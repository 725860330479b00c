"""results.json: versioned, schema-valid, round-trips; verdicts and exit codes follow the benches."""

from __future__ import annotations

import json

import jsonschema
import pytest

from hil.results import SuiteResult, json_schema, suite_verdict
from hil.errors import UsageError
from hil.report import load_results, write_reports

from .results_factory import failing_and_error, harness_error, suite_result


def test_verdict_is_the_worst_and_gives_the_exit_code():
    assert suite_verdict(["pass", "skipped"]) == "pass"
    assert suite_verdict(["pass", "fail", "skipped"]) == "fail"
    assert suite_verdict(["fail", "error"]) == "error"
    assert suite_verdict(["skipped"]) == "skipped"
    assert suite_result().exit_code == 0
    assert suite_result(p99=12).exit_code == 1
    r = suite_result(extra=failing_and_error())
    assert (r.verdict, r.exit_code) == ("error", 3)
    assert r.counts() == {"pass": 1, "fail": 1, "error": 1, "skipped": 1}


def test_results_json_is_valid_against_its_schema_and_round_trips(tmp_path):
    r = suite_result(extra=[*failing_and_error(), harness_error()], selected=["approach", "overloaded"])
    write_reports(r, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    jsonschema.validate(data, json_schema())
    assert (data["schema"], data["version"], data["verdict"], data["exit_code"]) == ("hil-results", 2, "error", 3)
    back = load_results(tmp_path)
    assert back.to_json() == data
    assert back.benches[1].failed_measurements()[0].detail == "12.5 is not ≤ 10"
    assert back.selected == ["approach", "overloaded"]


def test_every_bench_result_carries_its_harness_error(tmp_path):
    write_reports(suite_result(extra=[harness_error()]), tmp_path)
    approach, overloaded = json.loads((tmp_path / "results.json").read_text())["benches"]
    delivery = approach["harness"]["buses"]["chassis"]["delivery"]
    assert (delivery["count"], delivery["max_ns"], delivery["over"]) == (4, 85_000, 0)
    assert approach["harness"]["breaches"] == [] and approach["harness"]["measured"] is True
    assert approach["harness"]["host"]["inject-start"]["cpus"] == 2
    assert overloaded["harness"]["buses"]["chassis"]["delivery"]["over"] == 10
    assert overloaded["harness"]["breaches"] == ["delivery error p99 3.2 ms on bus chassis, budget 1 ms"]
    assert (overloaded["verdict"], overloaded["error_kind"]) == ("error", "HarnessError")
    assert overloaded["measurements"][0]["outcome"] == "unjudged"


def test_a_version_1_file_still_loads(tmp_path):
    data = suite_result().to_json()
    data["version"] = 1
    for bench in data["benches"]:
        del bench["harness"]
    del data["selected"]
    back = SuiteResult.from_json(data)
    assert back.benches[0].harness is None and back.selected is None


def test_nan_becomes_null():
    r = suite_result()
    r.benches[0].probes = {"p": {"stats": {"p50": float("nan")}, "duplicates": 0}}
    assert r.to_json()["benches"][0]["probes"]["p"]["stats"]["p50"] is None


def test_loading_something_else_says_what_was_expected(tmp_path):
    with pytest.raises(UsageError, match="expected a run folder or a results.json file"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"schema": "other", "version": 9}))
    with pytest.raises(UsageError, match="expected hil-results version 1 or 2, got 'other' version 9"):
        load_results(tmp_path)
    assert isinstance(SuiteResult.from_json(suite_result().to_json()), SuiteResult)
