"""The terminal summary of a run: a verdict table, latencies with the harness error that can enter
them, the harness error per bus, then what failed (or was not judged) and why (rich renderables)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hil.analysis.harness import bound_text, budget_text, duration_text
from hil.results import BenchResult, SuiteResult
from hil.harness import KINDS
from hil.values import Outcome, Verdict

STYLE = {"pass": "green", "fail": "red", "error": "bold red", "skipped": "dim", "marginal": "yellow",
         "unjudged": "dim"}


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
    parts += [t for t in (_latency_table(result), _harness_table(result)) if t is not None]
    for b in result.benches:
        rows = [m for m in b.measurements if m.outcome != Outcome.PASS]
        if rows:
            parts.append(Text.from_markup(f"[bold]{escape(b.key)}[/]"))
            parts += [Text.from_markup(f"  [{STYLE[m.outcome]}]{m.outcome}[/] {escape(m.name)} = "
                                       f"{_value(m.value, m.unit)}{_uncertainty(m)}  limits {escape(m.limits)}"
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
    """Latency of every probe and chain of every bench run, in ms, with the harness error (p99
    bound) that can enter it."""
    rows = [(b.key, name, entry) for b in result.benches
            for name, entry in [*b.probes.items(), *((f"chain {n}", c) for n, c in b.chains.items())]]
    if not rows:
        return None
    table = Table(title="latency (ms)", title_justify="left")
    for col in ("bench", "probe"):
        table.add_column(col)
    for col in ("count", "missed", "p50", "p99", "max", "± harness p99"):
        table.add_column(col, justify="right")
    for bench, name, entry in rows:
        s = entry["stats"]
        table.add_row(bench, name, str(s["count"]), str(s["missed"]), *(_ms(s.get(k)) for k in ("p50", "p99", "max")),
                      bound_text(entry.get("harness"), _ms))
    return table


def _harness_table(result: SuiteResult) -> Table | None:
    """The harness error of every bench run, per bus and kind (µs: p50 / p99 / max), with the frames
    over the bench's p99 budget; a bench without harness figures says it was not measured."""
    rows = []
    for b in result.benches:
        h = b.harness
        if h is None:
            continue
        budget = budget_text(h["budget"])
        if not h["measured"]:
            rows.append((b.key, "—", "not measured", "", "", "", budget))
        for bus, kinds in (h.get("buses") or {}).items():
            cells = [_figures(kinds.get(kind)) for kind in KINDS]
            rows.append((b.key, bus, *cells, str(sum(k["over"] for k in kinds.values())), budget))
        rows += [(b.key, bus, "not measured", "", "", "", budget) for bus in h.get("unmeasured") or ()]
        rows += [(b.key, f"{bus} (adapter clock)", f"± {_us(c['error_bound_ns'])}", f"{c['drift_ppm']:+.1f} ppm",
                  "—", "—", budget) for bus, c in (h.get("clocks") or {}).items()]
        if h.get("replay") is not None:  # the injected frames: their lateness is their delivery error
            r = h["replay"]
            rows.append((b.key, "replay", _figures({"count": r["sent"], **r}), "—", "—", str(r["over"]), budget))
    if not rows:
        return None
    table = Table(title="harness error (µs: p50 / p99 / max; over: frames over the p99 budget)", title_justify="left")
    for col in ("bench", "bus"):
        table.add_column(col, no_wrap=True)
    for col in (*KINDS, "over", "budget"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _figures(error: dict | None) -> str:
    if error is None or not error["count"]:
        return "—"
    return " / ".join(_us(error[k]) for k in ("p50_ns", "p99_ns", "max_ns"))


def _uncertainty(m) -> str:
    return "" if m.harness_ns is None else f" ± harness {duration_text(m.harness_ns)}"


def _ms(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e6:.3f}"


def _us(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e3:,.0f}"


def _verdict(verdict: str, flaky: bool) -> Text:
    return Text(verdict + (" (flaky)" if flaky else ""), style=STYLE[verdict])


def _tally(b: BenchResult) -> str:
    if not b.measurements:
        return "—"
    unjudged = sum(m.outcome == Outcome.UNJUDGED for m in b.measurements)
    if unjudged:
        return f"{unjudged} unjudged"
    ok = sum(m.outcome != Outcome.FAIL for m in b.measurements)
    marginal = sum(m.outcome == Outcome.MARGINAL for m in b.measurements)
    return f"{ok}/{len(b.measurements)}" + (f" ({marginal} marginal)" if marginal else "")


def _note(b: BenchResult) -> str:
    if b.verdict == Verdict.ERROR:
        return f"{b.phase}: {b.error}" if b.phase else (b.error or "")
    if b.verdict == Verdict.SKIPPED:
        return b.error or ""
    failed = b.failed_measurements()
    if failed:
        return "failed: " + ", ".join(m.name for m in failed)
    return ""


def _value(value: float | None, unit: str) -> str:
    return "none" if value is None else f"{value:.6g}" + (f" {unit}" if unit else "")
