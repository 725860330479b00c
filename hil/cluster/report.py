"""Several rigs side by side: one table of verdicts and latencies per bench with a column per rig
(terminal and ``rigs.html``), and one JUnit file holding every rig's benches (``junit.xml`` in the
parent run folder). Each rig's own run folder keeps its full reports."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from hil.results import SuiteResult

STATS = ("p50", "p99", "max")


def rows(results: list[SuiteResult]) -> list[tuple[str, str, list[str]]]:
    """(bench, what, one cell per rig): each bench's verdict, then each probe's and chain's latency
    (p50 / p99 / max in ms); a rig that did not run a bench shows an empty cell."""
    keys = list(dict.fromkeys(b.key for r in results for b in r.benches))
    by_rig = [{b.key: b for b in r.benches} for r in results]
    out = []
    for key in keys:
        benches = [rig.get(key) for rig in by_rig]
        out.append((key, "verdict", [_verdict(b) for b in benches]))
        for kind in ("probes", "chains"):
            names = list(dict.fromkeys(n for b in benches if b is not None for n in getattr(b, kind)))
            for name in names:
                cells = [_latency(getattr(b, kind).get(name)) if b is not None else "" for b in benches]
                out.append((key, f"{name} ms ({'/'.join(STATS)})", cells))
    return out


def side_by_side(results: list[SuiteResult]):
    """The rich table for the terminal."""
    from rich.table import Table

    table = Table(title=f"suite {results[0].suite} on {len(results)} rigs", title_justify="left")
    table.add_column("bench")
    table.add_column("")
    for r in results:
        table.add_column(r.rig, justify="right")
    for bench, what, cells in rows(results):
        table.add_row(bench if what == "verdict" else "", what if what != "verdict" else "", *cells)
    return table


def write_side_by_side(suite: str, results: list[SuiteResult], out: Path,
                       errors: Mapping[str, Exception] | None = None) -> dict[str, Path]:
    """``out/junit.xml`` (every rig's benches) and ``out/rigs.html`` (the side-by-side table).

    A rig in ``errors`` did not run the suite (busy, unhealthy, unreachable): it is one testcase
    ``rig`` in error in the JUnit file, and listed under the table, so CI shows it."""
    from hil.report.junit import junit_xml

    errors = errors or {}
    out.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites", {"name": suite})
    for key in ("tests", "failures", "errors"):
        root.set(key, "0")
    rig_roots = [(r.rig, junit_xml(r).getroot()) for r in results]
    rig_roots += [(rig, _rig_error(suite, rig, exc)) for rig, exc in errors.items()]
    for rig, rig_root in rig_roots:
        for key in ("tests", "failures", "errors"):
            root.set(key, str(int(root.get(key, "0")) + int(rig_root.get(key, "0"))))  # set above
        for testsuite in rig_root:
            testsuite.set("name", f"{rig}.{testsuite.get('name')}")  # unique across rigs
            root.append(testsuite)
    ET.indent(root)
    junit = out / "junit.xml"
    ET.ElementTree(root).write(junit, encoding="utf-8", xml_declaration=True)
    page = out / "rigs.html"
    page.write_text(_html(suite, results, errors), encoding="utf-8")
    return {"junit": junit, "html": page}


def _rig_error(suite: str, rig: str, exc: Exception) -> ET.Element:
    """A JUnit root holding one errored testcase for a rig that did not run the suite."""
    root = ET.Element("testsuites", {"tests": "1", "failures": "0", "errors": "1"})
    testsuite = ET.SubElement(root, "testsuite", {"name": "rig", "tests": "1", "failures": "0", "errors": "1"})
    case = ET.SubElement(testsuite, "testcase", {"name": "rig", "classname": f"{suite}.{rig}"})
    ET.SubElement(case, "error", {"type": type(exc).__name__, "message": str(exc)}).text = str(exc)
    return root


def _html(suite: str, results: list[SuiteResult], errors: Mapping[str, Exception]) -> str:
    head = "".join(f"<th><a href='{html.escape(Path(r.run_dir).name)}/report.html'>{html.escape(r.rig)}</a></th>"
                   for r in results)
    body = "".join(
        "<tr><td>" + html.escape(bench if what == "verdict" else "") + "</td><td>"
        + html.escape("" if what == "verdict" else what) + "</td>"
        + "".join(f"<td class='{html.escape(c.split()[0] if c else '')}'>{html.escape(c)}</td>" for c in cells)
        + "</tr>" for bench, what, cells in rows(results))
    missing = "".join(f"<li><b>{html.escape(rig)}</b>: <span class='error'>{html.escape(str(exc))}</span></li>"
                      for rig, exc in errors.items())
    return ("<!doctype html><meta charset='utf-8'><title>" + html.escape(suite) + " on several rigs</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:right}td:first-child{text-align:left}"
            ".pass{color:#1a7f37}.fail,.error{color:#cf222e}</style>"
            f"<h1>{html.escape(suite)}: rigs side by side</h1>"
            f"<table><tr><th>bench</th><th></th>{head}</tr>{body}</table>"
            + (f"<h2>Rigs that did not run the suite</h2><ul>{missing}</ul>" if missing else ""))


def _verdict(b) -> str:
    if b is None:
        return ""
    return b.verdict + (" (flaky)" if b.flaky else "")


def _latency(entry: dict | None) -> str:
    if not entry:
        return ""
    stats = entry["stats"]
    return " / ".join("–" if stats.get(s) is None else f"{stats[s] / 1e6:.2f}" for s in STATS)
