"""A self-contained HTML report of a run: inline CSS, plots embedded as base64 PNG, no scripts and
no external resources, so it can be mailed or archived as one file. Links to the recordings and
consoles are relative, for when it is opened inside the run folder."""

from __future__ import annotations

import base64
from html import escape
from urllib.parse import quote
from pathlib import Path

from hil.analysis.harness import bound_text, budget_text, duration_text, load_text
from hil.results import BenchResult, SuiteResult
from hil.values import Verdict

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#f3f3f3}.pass{color:#1a7f37}.fail{color:#cf222e}.error{color:#cf222e;font-weight:bold}
.marginal{color:#9a6700}.skipped{color:#888}.unjudged{color:#888;font-style:italic}
.num{text-align:right;font-variant-numeric:tabular-nums}
section{border-top:2px solid #ddd;margin-top:1.5em}img{max-width:100%;display:block;margin:.5em 0}
pre{background:#f6f8fa;padding:.5em;white-space:pre-wrap}
"""


def html_report(result: SuiteResult, run_dir: Path) -> str:
    """The report as one HTML string; plots are read from the bench folders under ``run_dir``."""
    counts = ", ".join(f"{n} {v}" for v, n in result.counts().items() if n)
    head = (f"<h1>{escape(result.suite)} on {escape(result.rig)}: "
            f"<span class='{result.verdict}'>{result.verdict.upper()}</span></h1>"
            f"<p>{counts} · started {escape(result.started_utc)} · {result.duration_s:.1f} s · "
            f"host {escape(result.host)} · hil {escape(result.hil_version)}"
            + "".join(f" · stack {escape(name)} {escape(version)}" for name, version in result.stack.items())
            + "</p>")
    rows = "".join(f"<tr><td><a href='#{_anchor(b.key)}'>{escape(b.key)}</a></td>"
                   f"<td class='{b.verdict}'>{b.verdict}{' (flaky)' if b.flaky else ''}</td>"
                   f"<td class='num'>{b.duration_s:.1f} s</td><td>{escape(_note(b))}</td></tr>"
                   for b in result.benches)
    summary = f"<table><tr><th>bench</th><th>verdict</th><th>time</th><th>note</th></tr>{rows}</table>"
    regress = ""
    if result.regressions:
        items = "".join(f"<li>{escape(r['bench'])} / {escape(r['measurement'])}: {escape(r['message'])}</li>"
                        for r in result.regressions)
        regress = f"<h2>Regressions</h2><ul>{items}</ul>"
    body = "".join(_bench_section(b, run_dir) for b in result.benches)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>hil {escape(result.suite)} — {result.verdict}</title><style>{CSS}</style></head>"
            f"<body>{head}{summary}{regress}{body}</body></html>")


def write_html(result: SuiteResult, run_dir: Path, path: Path) -> Path:
    path.write_text(html_report(result, run_dir), encoding="utf-8")
    return path


def _note(b: BenchResult) -> str:
    if b.verdict == Verdict.ERROR:
        return f"{b.phase}: {b.error}" if b.phase else (b.error or "")
    failed = b.failed_measurements()
    return ("failed: " + ", ".join(m.name for m in failed)) if failed else (b.error or "")


def _bench_section(b: BenchResult, run_dir: Path) -> str:
    parts = [f"<section id='{_anchor(b.key)}'><h2>{escape(b.key)}: <span class='{b.verdict}'>{b.verdict}</span></h2>"]
    if b.error:
        parts.append(f"<pre>{escape((b.phase + ': ') if b.phase else '')}{escape(b.error)}</pre>")
    if b.measurements:
        rows = "".join(
            f"<tr><td>{escape(m.name)}</td><td>{escape(m.source)}</td><td>{escape(m.stat)}</td>"
            f"<td class='num'>{'—' if m.value is None else f'{m.value:.6g}'}</td><td>{escape(m.unit)}</td>"
            f"<td class='num'>{'' if m.harness_ns is None else '± ' + duration_text(m.harness_ns)}</td>"
            f"<td>{escape(m.limits)}</td><td class='{m.outcome}'>{m.outcome}</td><td>{escape(m.detail)}</td></tr>"
            for m in b.measurements)
        parts.append("<h3>Measurements</h3><table><tr><th>name</th><th>source</th><th>stat</th><th>value</th>"
                     "<th>unit</th><th>harness p99</th><th>limits</th><th>outcome</th><th>detail</th></tr>"
                     f"{rows}</table>")
    latency = {**{n: (p["stats"], p.get("harness")) for n, p in b.probes.items()},
               **{f"chain {n}": (c["stats"], c.get("harness")) for n, c in b.chains.items()},
               **{f"chain {n} · {h}": (s, None) for n, c in b.chains.items() for h, s in c["hops"].items()}}
    if latency:
        cols = ("count", "missed", "min", "p50", "p90", "p99", "p99_9", "max", "mean", "std")
        rows = "".join(f"<tr><td>{escape(n)}</td>" + "".join(
            f"<td class='num'>{_ms(s.get(c)) if c not in ('count', 'missed') else s.get(c)}</td>" for c in cols)
            + f"<td class='num'>{escape(bound_text(bound, _ms))}</td></tr>" for n, (s, bound) in latency.items())
        parts.append("<h3>Latency (ms)</h3><table><tr><th>probe</th>"
                     + "".join(f"<th>{c.replace('_', '.')}</th>" for c in cols)
                     + f"<th>± harness p99</th></tr>{rows}</table>")
    if b.harness is not None:
        parts.append(_harness_section(b.harness))
    for title, rel in b.files.get("plots", {}).items():
        png = run_dir / rel
        if png.is_file():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            parts.append(f"<h3>{escape(title)}</h3><img alt='{escape(title)}' src='data:image/png;base64,{data}'>")
    links = [(k, v) for k, v in b.files.items() if k != "plots"]
    if links:
        parts.append("<p>" + " · ".join(_link(k, v) for k, v in links) + "</p>")
    parts.append("</section>")
    return "".join(parts)


def _harness_section(h: dict) -> str:
    """The harness error of one bench: per bus and kind, the replay, the budget, the host's load."""
    parts = [f"<h3>Harness error</h3><p>budget {escape(budget_text(h['budget']))}</p>"]
    if not h["measured"]:
        parts.append(f"<p class='unjudged'>{escape(h['note'])}</p>")
    rows = [(bus, kind, e) for bus, kinds in (h.get("buses") or {}).items() for kind, e in kinds.items()]
    if h.get("replay") is not None:
        rows.append(("replay", "lateness", {"count": h["replay"]["sent"], "mean_ns": None, **h["replay"]}))
    if rows:
        cols = ("count", "early", "p50_ns", "p99_ns", "max_ns", "mean_ns", "over")
        body = "".join(f"<tr><td>{escape(bus)}</td><td>{escape(kind)}</td>" + "".join(
            f"<td class='num'>{_us(e.get(c)) if c.endswith('_ns') else e.get(c, '')}</td>" for c in cols) + "</tr>"
            for bus, kind, e in rows)
        parts.append("<table><tr><th>bus</th><th>error</th><th>count</th><th>early</th><th>p50 µs</th>"
                     f"<th>p99 µs</th><th>max µs</th><th>mean µs</th><th>over p99 budget</th></tr>{body}</table>")
    if h.get("unmeasured"):
        parts.append(f"<p>not measured on: {escape(', '.join(h['unmeasured']))}</p>")
    for bus, c in (h.get("clocks") or {}).items():
        parts.append(f"<p>adapter clock of {escape(bus)}: error bound ± {duration_text(c['error_bound_ns'])}, "
                     f"drift {c['drift_ppm']:+.1f} ppm — {escape(c['method'])}</p>")
    if h.get("host"):
        loads = "; ".join(f"{at}: {load_text(v)}" for at, v in h["host"].items())
        parts.append(f"<p>host load: {escape(loads)}</p>")
    if h["breaches"]:
        parts.append("<ul>" + "".join(f"<li class='error'>{escape(x)}</li>" for x in h["breaches"]) + "</ul>")
    return "".join(parts)


def _link(kind: str, value: str | dict) -> str:
    if isinstance(value, dict):
        return " · ".join(f"<a href='{_href(v)}'>{escape(kind)} {escape(k)}</a>" for k, v in value.items())
    return f"<a href='{_href(value)}'>{escape(kind)}</a>"


def _href(path: str) -> str:
    """A relative file link: quoted, so ``approach#1/`` is a folder and not a fragment."""
    return escape(quote(path))


def _anchor(key: str) -> str:
    return escape(quote(key, safe=""))


def _ms(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e6:.3f}"


def _us(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e3:,.1f}"
