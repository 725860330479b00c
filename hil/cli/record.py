"""``hil record --rig RIG --duration 30s -o run.mcap``: record every bus of a rig into one MCAP."""

from __future__ import annotations

import click

from hil.cli.app import App, plain


@click.command()
@click.option("--rig", "rig_file", envvar="HIL_RIG", required=True, type=click.Path(dir_okay=False),
              help="Rig file (also HIL_RIG).")
@click.option("--duration", default="30s", show_default=True, help="How long to record (Ctrl-C stops early).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="MCAP file to write.")
@click.option("--bus", "names", multiple=True, help="Record only this bus (repeatable); default: every bus "
              "with record: true.")
@click.pass_obj
def record(app: App, rig_file: str, duration: str, output: str, names: tuple[str, ...]) -> None:
    """Record RIG's buses for DURATION into OUTPUT (MCAP, readable by Foxglove and `hil export`).

    On an emulated rig the buses are served for the length of the recording; the attach line
    (HIL_BUSES) lets other programs join them.
    """
    import tempfile
    import time
    from pathlib import Path

    from hil.buses import RigBuses
    from hil.clock import now_ns
    from hil.recording import Recorder
    from hil.spec.common import parse_duration_ns
    from hil.spec.load import load_rig

    try:
        length_ns = parse_duration_ns(duration)
    except ValueError as exc:
        app.abort(f"invalid --duration: {exc}")
    rig = load_rig(rig_file).model
    chosen = list(names) or [n for n, b in rig.buses.items() if b.record]
    unknown = [n for n in chosen if n not in rig.buses]
    if unknown:
        app.abort(f"unknown bus {unknown[0]!r}; rig {rig.name} has: {', '.join(sorted(rig.buses))}")
    with tempfile.TemporaryDirectory(prefix="hil-record-") as run_dir, RigBuses(rig, Path(run_dir)) as buses:
        rec = Recorder(output, buses, chosen, metadata={"rig": rig.name, "command": "hil record"})
        rec.start()
        interrupted = False
        try:
            with _progress(app) as bar:
                if rig.emulated:  # printed once recording runs, so programs that join are recorded
                    joinable = [n for n in chosen if rig.buses[n].kind != "ethernet"]  # networks: addresses
                    app.print(plain(f"HIL_BUSES={buses.env(joinable, side='device')['HIL_BUSES']}"), level=1)
                task = bar.add_task("record", total=length_ns / 1e9, frames="0", rate="")
                start = now_ns()
                while (elapsed := now_ns() - start) < length_ns:
                    time.sleep(min(0.25, (length_ns - elapsed) / 1e9))
                    n = sum(rec.counts.values())
                    bar.update(task, completed=(now_ns() - start) / 1e9, frames=f"{n:,}",
                               rate=f"{n / max((now_ns() - start) / 1e9, 1e-9):,.0f}/s")
        except KeyboardInterrupt:
            interrupted = True
            app.warn("stopped early (Ctrl-C); the recording is complete up to now")
        finally:
            rec.close(raise_error=not interrupted)  # Ctrl-C also stops emulated buses: no news
    per_topic = ", ".join(f"{t} {n:,}" for t, n in sorted(rec.counts.items())) or "nothing arrived"
    app.print(f"[green]recorded[/] {plain(output)}: {plain(per_topic)}", level=-1)


def _progress(app: App):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("recording"), BarColumn(), TextColumn("{task.fields[frames]} messages"),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=app.err_console,
                    disable=app.verbosity < 0, transient=True)
