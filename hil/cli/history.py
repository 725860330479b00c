"""``hil history [SUITE]``: the runs in the history database; per measurement trends with sparklines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hil.cli.app import App, plain
from hil.values import Outcome, Verdict

MARKS: dict[str, str] = {Outcome.PASS: "[green]✓[/]", Outcome.MARGINAL: "[yellow]~[/]", Outcome.FAIL: "[red]✗[/]",
                         Outcome.UNJUDGED: "[dim]·[/]"}  # a measurement's outcome in a trend
VERDICTS: dict[str, str] = {Verdict.PASS: "[green]pass[/]", Verdict.FAIL: "[red]fail[/]",
                            Verdict.ERROR: "[bold red]error[/]"}


@click.command()
@click.argument("suite", required=False)
@click.option("--rig", help="Only runs on this rig (name).")
@click.option("--last", type=click.IntRange(min=1, max=100_000), default=20, show_default=True, help="How many runs.")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path), envvar="HIL_HISTORY",
              help="History database (default: in the user's data folder; also HIL_HISTORY).")
@click.pass_obj
def history(app: App, suite: str | None, rig: str | None, last: int, history: Path | None) -> None:
    """Without SUITE: the latest runs. With SUITE: each measurement over its last runs."""
    from rich.table import Table

    from hil.report.history import History, sparkline

    with History(history) as db:
        runs = db.runs(suite, rig, last)
        if not runs:
            app.print(plain(f"no runs{f' of suite {suite!r}' if suite else ''} in {db.path}"), level=-1)
            return
        if suite is None:
            table = Table(title=plain(f"latest runs — {db.path}"), title_justify="left")
            for col in ("run", "suite", "rig", "started (UTC)", "verdict", "time", "benches"):
                table.add_column(col)
            for r in runs:  # a --bench subset is marked: it is never a baseline for regressions
                table.add_row(*map(plain, (r["id"], r["suite"], r["rig"], r["started_utc"])), _verdict(r["verdict"]),
                              f"{r['duration_s']:.1f} s", "all" if r["selected"] is None else
                              "only " + plain(", ".join(json.loads(r["selected"]))))
            app.print(table, level=-1)
            return
        trend = db.trend(suite, rig, last)
    table = Table(title=plain(f"suite {suite}: last {len(runs)} run(s), oldest → newest"), title_justify="left")
    columns: tuple[tuple[str, dict[str, Any]], ...] = (
        ("bench", {}), ("measurement", {}), ("trend", {}), ("latest", {"justify": "right"}),
        ("min", {"justify": "right"}), ("max", {"justify": "right"}), ("outcomes", {}))
    for col, kw in columns:
        table.add_column(col, **kw)
    for (bench, name), points in trend.items():
        values = [p.value for p in points]
        known = [v for v in values if v is not None]
        marks = "".join(MARKS.get(p.outcome, "?") for p in points)
        table.add_row(bench, name, sparkline(values), _num(values[-1]), _num(min(known, default=None)),
                      _num(max(known, default=None)), marks)
    app.print(table, level=-1)
    app.print(f"runs: {', '.join(r['id'] + ' ' + r['verdict'] for r in reversed(runs))}", level=1)


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _verdict(v: str) -> str:
    return VERDICTS.get(v, v)
