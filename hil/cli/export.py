"""``hil export REC --to blf|asc|mf4|csv``: convert a recording's CAN frames with python-can's writers."""

from __future__ import annotations

import click

from hil.cli.app import App, plain
from hil.recording.export import EXPORT_FORMATS


@click.command()
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "fmt", required=True, type=click.Choice(EXPORT_FORMATS), help="Target format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: REC with the new suffix).")
@click.option("--bus", "names", multiple=True, help="Export only this bus (repeatable).")
@click.pass_obj
def export(app: App, recording: str, fmt: str, output: str | None, names: tuple[str, ...]) -> None:
    """Write RECORDING's CAN frames (every bus, merged in time order) as FORMAT."""
    from pathlib import Path

    from hil.recording.export import export as do_export

    out = Path(output) if output else Path(recording).with_suffix(f".{fmt}")
    channels = do_export(recording, out, fmt, list(names) or None)
    mapping = ", ".join(f"{bus} → channel {ch}" for bus, ch in channels.items())
    app.print(f"[green]wrote[/] {plain(out)} ({plain(mapping or 'no CAN buses')})", level=-1)
