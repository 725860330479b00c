"""``hil compare RUN_A RUN_B``: measurement by measurement, what changed between two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hil.cli.app import App


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path), envvar="HIL_HISTORY",
              help="History database for run ids (default: in the user's data folder; also HIL_HISTORY).")
@click.pass_obj
def compare(app: App, run_a: str, run_b: str, history: Path | None) -> None:
    """Compare two runs, each a run folder, a results.json or a run id (prefix) in the history.
    Warns when they differ in suite, rig, bench selection or a measurement's unit."""
    from rich.markup import escape
    from rich.table import Table

    from hil.report.compare import compare_runs, load_run, warnings

    a, b = load_run(run_a, history), load_run(run_b, history)
    rows = compare_runs(a, b)
    for warning in warnings(a, b, rows):
        app.warn(escape(warning))
    table = Table(title=f"A = {a.label}   B = {b.label}", title_justify="left")
    columns: tuple[tuple[str, dict[str, Any]], ...] = (
        ("bench", {}), ("measurement", {}), ("A", {"justify": "right"}), ("B", {"justify": "right"}),
        ("change", {"justify": "right"}), ("outcome", {}))
    for col, kw in columns:
        table.add_column(col, **kw)
    for row in rows:
        style = "red" if row.worse else "green" if row.better else ""
        change = "" if row.change is None else f"{row.change:+.4g}" + (f" ({row.relative:+.1%})" if row.relative is not None else "")
        table.add_row(row.bench, row.name, _num(row.a, row.other_unit or row.unit), _num(row.b, row.unit),
                      f"[{style}]{change}[/]" if style else change, f"{row.outcome_a or '—'} → {row.outcome_b or '—'}")
    app.print(table, level=-1)


def _num(v: float | None, unit: str) -> str:
    return "—" if v is None else f"{v:.4g} {unit}".strip()
