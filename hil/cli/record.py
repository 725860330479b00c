"""``hil record --rig RIG --duration 30s -o run.mcap``: record every bus of a rig into one MCAP.

It only listens, and takes no lease. When ``hil deploy`` of the same user holds the rig, it joins
that rig's buses (:mod:`hil.session.held`) and ends, its recording complete, when the holder does.
"""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App, plain


@click.command()
@click.option("--rig", "rig_file", envvar="HIL_RIG", required=True, type=click.Path(dir_okay=False),
              help="Rig file (also HIL_RIG).")
@click.option("--duration", default="30s", show_default=True, help="How long to record (Ctrl-C stops early).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="MCAP file to write.")
@click.option("--bus", "names", multiple=True, help="Record only this bus (repeatable); default: every bus "
              "with record: true (but the consoles of a deployed stack, whose lines are recorded).")
@click.pass_obj
def record(app: App, rig_file: str, duration: str, output: str, names: tuple[str, ...]) -> None:
    """Record RIG's buses for DURATION into OUTPUT (MCAP, readable by Foxglove and `hil export`).

    On an emulated rig the buses are served for the length of the recording — or, when `hil deploy`
    holds the rig, joined; the attach line (HIL_BUSES) lets other programs join them.
    """
    from hil.bench.lease import lock_dir
    from hil.clock import now_ns
    from hil.errors import BusError
    from hil.session import RigSession
    from hil.session.folders import scratch_folder
    from hil.session.held import find
    from hil.spec.common import parse_duration_ns
    from hil.spec.load import load_rig

    try:
        length_ns = parse_duration_ns(duration)
    except ValueError as exc:
        app.abort(f"invalid --duration: {exc}")
    rig = load_rig(rig_file).model
    unknown = [n for n in names if n not in rig.buses]
    if unknown:
        app.abort(f"unknown bus {unknown[0]!r}; rig {rig.name} has: {', '.join(sorted(rig.buses))}")
    held = find(lock_dir(), rig)
    with scratch_folder("record") as folder, RigSession(rig, folder, joined=held) as session:
        session.up()
        if held is None:  # nothing deployed here: a console is a serial bus like any other
            chosen = list(names) or [n for n, b in rig.buses.items() if b.record]
        else:  # the holder reads its targets' consoles (a tty has one reader)
            chosen = session.recorded(list(names) or None)
        rec = session.record(Path(output), chosen, metadata={
            "command": "hil record", **({} if held is None else {"joined": held.describe()})})
        if held is not None:  # printed once recording runs, as the attach line below
            app.print(plain(f"joined {held.describe()}"))
        ended: tuple = (None, None, None)
        try:
            with _progress(app) as bar:
                if rig.emulated:  # printed once recording runs, so programs that join are recorded
                    joinable = [n for n in chosen if rig.buses[n].kind != "ethernet"]  # networks: addresses
                    app.print(plain(f"HIL_BUSES={session.rig_buses().env(joinable, side='device')['HIL_BUSES']}"), level=1)
                task = bar.add_task("record", total=length_ns / 1e9, frames="0", rate="")
                start = now_ns()

                def tick() -> None:
                    n, elapsed = sum(rec.counts.values()), (now_ns() - start) / 1e9
                    bar.update(task, completed=elapsed, frames=f"{n:,}", rate=f"{n / max(elapsed, 1e-9):,.0f}/s")

                session.hold(start + length_ns, on_tick=tick)
        except KeyboardInterrupt as exc:
            ended = (type(exc), exc, exc.__traceback__)
            app.warn("stopped early (Ctrl-C); the recording is complete up to now")
        except BusError as exc:
            if held is None:
                raise
            ended = (type(exc), exc, exc.__traceback__)  # the holder went: its buses went with it
            app.warn(f"{exc}; the recording is complete up to then")
        session.stop_recording(*ended)
    per_topic = ", ".join(f"{t} {n:,}" for t, n in sorted(rec.counts.items())) or "nothing arrived"
    app.print(f"[green]recorded[/] {plain(output)}: {plain(per_topic)}", level=-1)


def _progress(app: App):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("recording"), BarColumn(), TextColumn("{task.fields[frames]} messages"),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=app.err_console,
                    disable=app.verbosity < 0, transient=True)
