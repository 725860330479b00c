"""``hil export REC --to blf|asc|mf4|csv|log|trc|pcapng``: convert a recording's CAN frames with
python-can's writers, or its networks' datagrams to pcapng."""

from __future__ import annotations

import click

from hil.cli.app import App, plain
from hil.recording.export import EXPORT_FORMATS


@click.command()
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "fmt", required=True, type=click.Choice(EXPORT_FORMATS), help="Target format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: REC with the new suffix).")
@click.option("--bus", "names", multiple=True, help="Export only this bus or network (repeatable).")
@click.option("--allow-loss", is_flag=True,
              help="Write even what the format cannot hold in full (TRC: remote, error and CAN FD frames "
                   "left out; CSV: buses merged); each loss is a warning with its frame count.")
@click.pass_obj
def export(app: App, recording: str, fmt: str, output: str | None, names: tuple[str, ...], allow_loss: bool) -> None:
    """Write RECORDING's CAN frames (every bus, merged in time order) as FORMAT, with absolute
    times; pcapng holds its networks' UDP datagrams instead. Exit 2 when FORMAT cannot hold every
    frame, unless --allow-loss."""
    from pathlib import Path

    from hil.recording.export import export as do_export

    out = Path(output) if output else Path(recording).with_suffix(f".{fmt}")
    done = do_export(recording, out, fmt, list(names) or None, allow_loss)
    for warning in done.warnings:
        app.warn(warning)
    mapping = ", ".join(f"{bus} → channel {ch}" for bus, ch in done.channels.items())
    if fmt == "pcapng":
        mapping = "networks " + (", ".join(done.channels) or "none")
    app.print(f"[green]wrote[/] {plain(out)} ({plain(mapping or 'no CAN buses')})", level=-1)
