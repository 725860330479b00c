"""The terminal summary of a run: a verdict table, then what failed and why (rich renderables)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hil.bench.results import BenchResult, SuiteResult

STYLE = {"pass": "green", "fail": "red", "error": "bold red", "skipped": "dim", "marginal": "yellow"}


def summary(result: SuiteResult) -> RenderableType:
    """Verdict table, one row per bench run, plus details of failures, errors and regressions."""
    table = Table(title=f"suite {result.suite} on rig {result.rig}", title_justify="left")
    table.add_column("bench")
    table.add_column("verdict")
    table.add_column("time", justify="right")
    table.add_column("measurements", justify="right")
    table.add_column("note", overflow="fold")
    for b in result.benches:
        table.add_row(b.key, _verdict(b.verdict, b.flaky), f"{b.duration_s:.1f} s", _tally(b), escape(_note(b)))
    parts: list[RenderableType] = [table]
    latency = _latency_table(result)
    if latency is not None:
        parts.append(latency)
    for b in result.benches:
        rows = [m for m in b.measurements if m.outcome != "pass"]
        if rows:
            parts.append(Text.from_markup(f"[bold]{escape(b.key)}[/]"))
            parts += [Text.from_markup(f"  [{STYLE[m.outcome]}]{m.outcome}[/] {escape(m.name)} = "
                                       f"{_value(m.value, m.unit)}  limits {escape(m.limits)}"
                                       + (f" — {escape(m.detail)}" if m.detail else "")) for m in rows]
    for r in result.regressions:
        parts.append(Text.from_markup(f"[yellow]regression[/] {escape(r['bench'])}/{escape(r['measurement'])}: "
                                      f"{escape(r['message'])}"))
    counts = result.counts()
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    parts.append(Text.from_markup(f"[{STYLE[result.verdict]}]{result.verdict.upper()}[/] ({tally}) "
                                  f"in {result.duration_s:.1f} s — {escape(result.run_dir)}"))
    return Group(*parts)


def _latency_table(result: SuiteResult) -> Table | None:
    """Latency of every probe and chain of every bench run, in ms."""
    rows = [(b.key, name, entry["stats"]) for b in result.benches
            for name, entry in [*b.probes.items(), *((f"chain {n}", c) for n, c in b.chains.items())]]
    if not rows:
        return None
    table = Table(title="latency (ms)", title_justify="left")
    for col in ("bench", "probe"):
        table.add_column(col)
    for col in ("count", "missed", "p50", "p99", "max"):
        table.add_column(col, justify="right")
    for bench, name, s in rows:
        table.add_row(bench, name, str(s["count"]), str(s["missed"]), *(_ms(s.get(k)) for k in ("p50", "p99", "max")))
    return table


def _ms(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e6:.3f}"


def _verdict(verdict: str, flaky: bool) -> Text:
    return Text(verdict + (" (flaky)" if flaky else ""), style=STYLE[verdict])


def _tally(b: BenchResult) -> str:
    if not b.measurements:
        return "—"
    ok = sum(m.outcome != "fail" for m in b.measurements)
    marginal = sum(m.outcome == "marginal" for m in b.measurements)
    return f"{ok}/{len(b.measurements)}" + (f" ({marginal} marginal)" if marginal else "")


def _note(b: BenchResult) -> str:
    if b.verdict == "error":
        return f"{b.phase}: {b.error}" if b.phase else (b.error or "")
    if b.verdict == "skipped":
        return b.error or ""
    failed = b.failed_measurements()
    if failed:
        return "failed: " + ", ".join(m.name for m in failed)
    return ""


def _value(value: float | None, unit: str) -> str:
    return "none" if value is None else f"{value:.6g}" + (f" {unit}" if unit else "")
