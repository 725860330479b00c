"""``hil rig status [RIG...]``: who holds each rig's lease, since when, and how healthy the rig is;
``hil rig health RIG``: run the rig's health check now."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App, lease_wait_option, plain


@click.group()
def rig() -> None:
    """Rig operations: leases and health."""


@rig.command(short_help="Who holds each rig's lease; each rig file's health.")
@click.argument("rigs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per rig, instead of a table.")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path), envvar="HIL_HISTORY",
              help="History database the health comes from (default: the user's; also HIL_HISTORY).")
@click.pass_obj
def status(app: App, rigs: tuple[str, ...], as_json: bool, history: Path | None) -> None:
    """Show the lease holder of each RIG (a name or a rig file; every rig leased on this host by
    default) and, for rig files, the rig's health from the history."""
    import json
    from dataclasses import asdict

    from hil.bench.lease import known_rigs, status as lease_status
    from hil.cluster.health import rig_health

    specs = {r: rig_spec(r) for r in rigs}
    health = {spec.name: rig_health(spec, history) for spec in specs.values() if spec is not None}
    names = [r if spec is None else spec.name for r, spec in specs.items()] or known_rigs()
    if not names:
        app.print("no rig has been leased on this host yet", level=-1)
        return
    states = [lease_status(n) for n in names]
    if as_json:
        app.console.print_json(json.dumps([{"rig": st.rig, "held": st.held, "stale": st.stale,
                                             "holder": asdict(st.record) if st.record else None,
                                             "health": asdict(health[st.rig]) if st.rig in health else None}
                                            for st in states]))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("rig", "lease", "health", "holder"):
        table.add_column(col)
    for st in states:
        if st.held:
            lease, holder = "[yellow]held[/]", plain(st.holder)
        elif st.record is not None:  # stale: free with a leftover record
            lease, holder = "[dim]free[/]", plain(f"left over from {st.record.describe()}; reclaimed on next use")
        else:
            lease, holder = "[green]free[/]", ""
        h = health.get(st.rig)
        shown = "—" if h is None else {"healthy": "[green]healthy[/]", "unhealthy": "[red]unhealthy[/]"}.get(
            h.state, "[dim]unknown[/]")
        table.add_row(st.rig, lease, shown, holder)
    app.print(table, level=-1)


@rig.command(short_help="Run a rig's health check now.")
@click.argument("rig_file", metavar="RIG", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder of the check (default: runs/SUITE-YYYYmmdd-HHMMSS).")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path), envvar="HIL_HISTORY",
              help="History database the result goes to (default: the user's; also HIL_HISTORY).")
@lease_wait_option
@click.pass_obj
def health(app: App, rig_file: str, out: Path | None, history: Path | None, lease_wait: float | None) -> int:
    """Run RIG's health check now: exit 0 healthy (runs may use the rig again), 3 unhealthy."""
    from hil.bench import SuiteOptions
    from hil.bench.lease import Lease
    from hil.cluster.health import check_health
    from hil.errors import EXIT_INFRA, UsageError
    from hil.spec import load_rig

    spec = load_rig(rig_file).model
    if spec.health is None:
        raise UsageError(f"rig {spec.name!r} names no health suite (key 'health' in {rig_file})")
    with Lease(spec.name, wait=lease_wait, command=f"hil rig health {rig_file}"):
        result = check_health(rig_file, spec, SuiteOptions(out=out, history=history))
    style = "green" if result.state == "healthy" else "red"
    app.print(f"rig {spec.name}: [{style}]{result.state}[/] — " + plain(f"health check {result.suite}, run "
              f"{result.run_id}, {result.run_dir}"), level=-1)
    return 0 if result.state == "healthy" else EXIT_INFRA


def rig_spec(arg: str):
    """The rig of a rig-file argument, or None for a rig name."""
    if arg.endswith((".yaml", ".yml")) or Path(arg).is_file():
        from hil.spec import load_rig

        return load_rig(arg).model
    return None
