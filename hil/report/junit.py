"""JUnit XML for CI (Jenkins, GitLab): one testsuite per bench run, holding one testcase.

The widely used Jenkins schema allows properties on a testsuite but not on a testcase, so each bench
gets its own ``<testsuite>`` whose ``<properties>`` are its measurements (``value unit``, with the
outcome and limits in a second property) and its harness error per bus and kind. A failed bench has
a ``<failure>`` listing the failed measurements; an infrastructure problem (or the harness over its
budget) is an ``<error>`` with the error kind as its type.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from hil.analysis.harness import duration_text
from hil.results import BenchResult, SuiteResult
from hil.values import Verdict


def junit_xml(result: SuiteResult) -> ET.ElementTree[ET.Element]:
    counts = result.counts()
    root = ET.Element("testsuites", {
        "name": result.suite, "tests": str(len(result.benches)), "failures": str(counts[Verdict.FAIL]),
        "errors": str(counts[Verdict.ERROR]), "time": _time(result.duration_s)})
    for bench in result.benches:
        root.append(_bench_suite(result, bench))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result: SuiteResult, path: Path) -> Path:
    junit_xml(result).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _bench_suite(run: SuiteResult, b: BenchResult) -> ET.Element:
    suite = ET.Element("testsuite", {
        "name": f"{run.suite}.{b.key}", "tests": "1", "failures": str(int(b.verdict == Verdict.FAIL)),
        "errors": str(int(b.verdict == Verdict.ERROR)), "skipped": str(int(b.verdict == Verdict.SKIPPED)),
        "time": _time(b.duration_s), "timestamp": b.started_utc or run.started_utc,
        "hostname": run.host or "localhost", "package": run.suite})
    props = ET.SubElement(suite, "properties")
    for name, value in [("rig", run.rig), ("verdict", b.verdict), ("flaky", str(b.flaky).lower())]:
        ET.SubElement(props, "property", {"name": name, "value": value})
    for name, value in _harness(b.harness):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for m in b.measurements:
        shown = "none" if m.value is None else f"{m.value:.6g}" + (f" {m.unit}" if m.unit else "")
        if m.harness_ns is not None:
            shown += f" ± harness {duration_text(m.harness_ns)}"
        ET.SubElement(props, "property", {"name": f"measurement.{m.name}", "value": shown})
        ET.SubElement(props, "property", {"name": f"measurement.{m.name}.outcome",
                                          "value": f"{m.outcome} ({m.limits})"})
    case = ET.SubElement(suite, "testcase", {"name": b.key, "classname": f"{run.suite}.{run.rig}",
                                             "time": _time(b.duration_s)})
    if b.verdict == Verdict.FAIL:
        failed = b.failed_measurements()
        el = ET.SubElement(case, "failure", {
            "type": "measurement",
            "message": f"{len(failed)} measurement(s) failed: " + ", ".join(m.name for m in failed)})
        el.text = "\n".join(f"{m.name}: {m.detail} (limits {m.limits}; {m.source})" for m in failed)
    elif b.verdict == Verdict.ERROR:
        el = ET.SubElement(case, "error", {"type": b.error_kind or "error",
                                           "message": (b.error or "").splitlines()[0] if b.error else ""})
        el.text = (f"phase: {b.phase}\n" if b.phase else "") + (b.error or "")
    elif b.verdict == Verdict.SKIPPED:
        ET.SubElement(case, "skipped", {"message": b.error or "not run"})
    if b.measurements:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(f"{m.outcome:8} {m.name} = {'none' if m.value is None else f'{m.value:.6g}'} "
                             f"{m.unit} ({m.limits})" for m in b.measurements)
    return suite


def _harness(h: dict | None) -> list[tuple[str, str]]:
    """``harness.BUS.KIND`` = "p50 …, p99 …, max …, N over budget" (or ``harness`` = not measured)."""
    if h is None:
        return []
    if not h["measured"]:
        return [("harness", "not measured")]
    return [(f"harness.{bus}.{kind}", ", ".join(f"{k[:-3]} {duration_text(e[k])}" for k in ("p50_ns", "p99_ns", "max_ns")
                                                 if e[k] is not None)
             + f", {e['over']} over budget")
            for bus, kinds in (h.get("buses") or {}).items() for kind, e in kinds.items()]


def _time(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}"
