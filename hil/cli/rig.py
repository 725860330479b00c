"""``hil rig status [RIG...]``: who holds each rig's lease, since when, and how healthy the rig is."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App


@click.group()
def rig() -> None:
    """Rig operations: leases and health."""


@rig.command()
@click.argument("rigs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per rig, instead of a table.")
@click.pass_obj
def status(app: App, rigs: tuple[str, ...], as_json: bool) -> None:
    """Show the lease holder of each RIG (a name or a rig file); every rig with a lease by default."""
    import json
    from dataclasses import asdict

    from hil.bench.lease import known_rigs, status as lease_status

    names = [rig_name(r) for r in rigs] or known_rigs()
    if not names:
        app.print("no rig has been leased on this host yet", level=-1)
        return
    states = [lease_status(n) for n in names]
    if as_json:
        app.console.print_json(json.dumps([{"rig": st.rig, "held": st.held, "stale": st.stale,
                                             "holder": asdict(st.record) if st.record else None}
                                            for st in states]))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("rig", "lease", "holder"):
        table.add_column(col)
    for st in states:
        if st.held:
            lease, holder = "[yellow]held[/]", st.record.describe() if st.record else "(no record yet)"
        elif st.stale:
            lease, holder = "[dim]free[/]", f"left over from {st.record.describe()}; reclaimed on next use"
        else:
            lease, holder = "[green]free[/]", ""
        table.add_row(st.rig, lease, holder)
    app.print(table, level=-1)


def rig_name(arg: str) -> str:
    """A rig given by name stays a name; a rig file is loaded (and checked) for its name."""
    if arg.endswith((".yaml", ".yml")) or Path(arg).is_file():
        from hil.spec import load_rig

        return load_rig(arg).model.name
    return arg
