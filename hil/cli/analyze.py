"""``hil analyze RECORDING --suite SUITE --bench NAME``: judge any recording again, without a rig."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App


@click.command()
@click.argument("recording", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--suite", required=True, type=click.Path(dir_okay=False), help="Suite that defines the bench.")
@click.option("--bench", required=True, metavar="NAME", help="Bench whose probes and measurements apply.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the reports (default: analysis-NAME beside the recording).")
@click.option("--map", "mapping", multiple=True, metavar="CHANNEL=BUS",
              help="Name a log channel as the bench's bus (repeatable), e.g. --map 1=chassis.")
@click.pass_obj
def analyze(app: App, recording: Path, suite: str, bench: str, out: Path | None, mapping: tuple[str, ...]) -> int:
    """Re-analyse RECORDING with a bench's probes and limits: exit 0 pass, 1 fail, 3 error (the harness
    over its budget).

    RECORDING is a hil MCAP recording or any CAN log python-can reads (BLF, ASC, TRC, candump .log,
    CSV, MF4); log channels are the bus names unless mapped with --map."""
    from hil.bench.offline import analyse_offline
    from hil.report.console import summary

    from hil.spec.suite import format_unavailable

    if recording.suffix.lower() == ".mf4" and format_unavailable("mf4"):
        app.abort(f"cannot read {recording}: {format_unavailable('mf4')}")
    pairs = [m.partition("=") for m in mapping]
    bad = [m for m, (ch, eq, bus) in zip(mapping, pairs) if not (ch and eq and bus)]
    if bad:
        app.abort(f"expected --map CHANNEL=BUS, got {', '.join(map(repr, bad))}")
    result = analyse_offline(recording, suite, bench, out or recording.parent / f"analysis-{bench}",
                             {ch: bus for ch, _, bus in pairs})
    for warning in result.benches[0].warnings:
        app.warn(warning)
    app.print(summary(result), level=-1)
    return result.exit_code
