"""JUnit XML validates against the Jenkins JUnit schema and says what failed and why."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import xmlschema

from hil.report.junit import write_junit

from .results_factory import failing_and_error, harness_error, suite_result

XSD = Path(__file__).parent / "junit-10.xsd"


def test_junit_validates_and_has_a_testcase_per_bench(tmp_path):
    path = write_junit(suite_result(extra=failing_and_error()), tmp_path / "junit.xml")
    xmlschema.XMLSchema(XSD).validate(str(path))
    root = ET.parse(path).getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "4", "1", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["approach", "cut-in", "dropout", "cruise"]
    assert list(cases["approach"]) == [cases["approach"].find("system-out")]


def test_failure_lists_the_failed_measurements(tmp_path):
    root = ET.parse(write_junit(suite_result(extra=failing_and_error()), tmp_path / "j.xml")).getroot()
    failure = next(c for c in root.iter("testcase") if c.get("name") == "cut-in").find("failure")
    assert failure.get("message") == "1 measurement(s) failed: p99"
    assert failure.text == "p99: 12.5 is not ≤ 10 (limits ≤ 10 ms; probe p)"


def test_error_is_infrastructure_with_its_kind_and_phase(tmp_path):
    root = ET.parse(write_junit(suite_result(extra=failing_and_error()), tmp_path / "j.xml")).getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "dropout")
    assert case.find("failure") is None
    err = case.find("error")
    assert err.get("type") == "DeployError"
    assert err.text.startswith("phase: ready\ntarget 'hpc'")
    skipped = next(c for c in root.iter("testcase") if c.get("name") == "cruise").find("skipped")
    assert skipped.get("message") == "--fail-fast: dropout did not pass"


def test_measurements_are_properties_of_the_bench_suite(tmp_path):
    root = ET.parse(write_junit(suite_result(), tmp_path / "j.xml")).getroot()
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").iter("property")}
    assert props["measurement.p99"] == "4 ms"
    assert props["measurement.p99.outcome"] == "pass (≤ 10 ms)"
    assert props["rig"] == "sim" and props["verdict"] == "pass"


def test_harness_error_per_bus_is_a_property_and_a_breach_is_an_error(tmp_path):
    path = write_junit(suite_result(extra=[harness_error()]), tmp_path / "j.xml")
    xmlschema.XMLSchema(XSD).validate(str(path))
    approach, overloaded = ET.parse(path).getroot().iter("testsuite")
    props = {p.get("name"): p.get("value") for p in approach.iter("property")}
    assert props["harness.chassis.delivery"] == "p50 30.2 µs, p99 85 µs, max 85 µs, 0 over budget"
    err = overloaded.find("testcase/error")
    assert err.get("type") == "HarnessError"
    assert err.get("message").startswith("host overloaded, harness over budget: delivery error p99 3.2 ms on bus")
    assert overloaded.find("testcase/failure") is None
