"""``hil replay STIMULUS... --rig RIG``: inject recorded streams onto a rig's buses and report the
replay error (lateness p50/p99/p99.9/max, frames early, span error).

The rig is brought up for the replay under its lease — or, when ``hil deploy`` of the same user
holds it, joined: the stimulus then drives the deployed stack (:mod:`hil.session.held`)."""

from __future__ import annotations

import json

import click

from hil.cli.app import App, lease_wait_option, plain
from hil.errors import EXIT_FAILED


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise click.BadParameter(f"expected {what}, got {v!r}")
        out[key] = val
    return out


_OPTIONS = {"rate": "--rate", "loop": "--loop", "skip_gaps_over": "--skip-gaps-over", "dbc": "--dbc", "map": "--map",
            "include_ids": "--include", "exclude_ids": "--exclude", "include_ports": "--include-port",
            "exclude_ports": "--exclude-port", "start": "--start", "end": "--end",
            "format": "--format", "file": "FILES"}


def _option(loc: tuple) -> str:
    """The option a stimulus field came from, for messages (``('sources', 0, 'end')`` → ``--end``)."""
    return next((_OPTIONS[p] for p in reversed(loc) if p in _OPTIONS), ".".join(map(str, loc)))


def _fraction(value: str) -> float:
    """A finite fraction ≥ 0 (``span_error=0.001``): NaN would never be exceeded."""
    number = float(value)
    if not 0 <= number < float("inf"):
        raise ValueError(f"expected a fraction ≥ 0 such as 0.001, got {value!r}")
    return number


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--rig", "rig_file", envvar="HIL_RIG", required=True, type=click.Path(dir_okay=False),
              help="Rig file (also HIL_RIG).")
@click.option("--map", "maps", multiple=True, metavar="LOG_CH=BUS",
              help="Log channel → rig bus (repeatable); for a packet capture ADDR:PORT=TARGET.PORT.")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", "asc", "blf", "trc", "log", "csv", "mf4", "mcap", "serial", "pcap", "pcapng"]))
@click.option("--include", "include", multiple=True, metavar="ID", help="Only these CAN ids (repeatable).")
@click.option("--exclude", "exclude", multiple=True, metavar="ID", help="Leave out these CAN ids (repeatable).")
@click.option("--include-port", "include_ports", multiple=True, type=int, metavar="PORT",
              help="Packet capture: only datagrams to these destination UDP ports (repeatable).")
@click.option("--exclude-port", "exclude_ports", multiple=True, type=int, metavar="PORT",
              help="Packet capture: leave out datagrams to these destination UDP ports (repeatable).")
@click.option("--start", default="0s", show_default=True, help="Window start after the first event.")
@click.option("--end", default=None, help="Window end after the first event.")
@click.option("--rate", type=float, default=1.0, show_default=True, help="Speed factor (2 = twice as fast).")
@click.option("--loop", type=int, default=1, show_default=True, help="Play the stimulus this many times.")
@click.option("--skip-gaps-over", default=None, metavar="DURATION", help="Shorten longer gaps to this.")
@click.option("--max-gap", default=None, metavar="DURATION",
              help="Longest silence allowed (default 1 min); a longer gap is refused unless shortened.")
@click.option("--lenient", is_flag=True, help="Text logs: skip lines not understood (counted) instead of refusing.")
@click.option("--dbc", multiple=True, type=click.Path(exists=True, dir_okay=False), help="DBC file(s).")
@click.option("--record", "record_to", type=click.Path(dir_okay=False), help="Also record every bus to this MCAP.")
@click.option("--budget", multiple=True, metavar="STAT=LIMIT",
              help="Replay-error budget, e.g. p99=100us, max=1ms, span_error=0.001; exceeding it exits 1.")
@click.option("--spin-only", is_flag=True, help="No simbus timed release: sleep-and-spin on every bus.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@lease_wait_option
@click.pass_obj
def replay(app: App, files, rig_file, maps, fmt, include, exclude, include_ports, exclude_ports, start, end, rate,
           loop, skip_gaps_over, max_gap, lenient, dbc, record_to, budget, spin_only, as_json, lease_wait) -> None:
    """Inject FILES (CAN logs, MCAP recordings, serial captures) onto RIG with exact timing."""
    from contextlib import nullcontext

    from pydantic import ValidationError

    from hil.bench.lease import Lease, lock_dir
    from hil.session import RigSession
    from hil.session.folders import scratch_folder
    from hil.session.held import find
    from hil.spec.check import file_problems, stimulus_problems
    from hil.spec.common import parse_duration_ns
    from hil.spec.load import error_message, load_rig
    from hil.spec.suite import Stimulus
    from hil.stimulus.report import STATISTICS
    from hil.stimulus.timeline import build_timeline

    source = {"format": fmt, "map": _pairs(maps, "LOG_CH=BUS"), "exclude_ids": list(exclude), "start": start,
              "lenient": lenient}
    if include:
        source["include_ids"] = list(include)
    if include_ports:
        source["include_ports"] = list(include_ports)
    if exclude_ports:
        source["exclude_ports"] = list(exclude_ports)
    if end is not None:
        source["end"] = end
    stim = {"sources": [{"file": f, **source} for f in files], "rate": rate, "loop": loop, "dbc": list(dbc)}
    if skip_gaps_over is not None:
        stim["skip_gaps_over"] = skip_gaps_over
    if max_gap is not None:
        stim["max_gap"] = max_gap
    try:
        stimulus = Stimulus.model_validate(stim)
        limits = {}
        for k, v in _pairs(budget, "STAT=LIMIT").items():
            if k not in STATISTICS:
                raise ValueError(f"unknown statistic {k!r}; expected one of {', '.join(STATISTICS)}")
            limits[k] = _fraction(v) if k == "span_error" else parse_duration_ns(v)
    except ValidationError as exc:  # before ValueError, its base class
        app.abort("; ".join(f"{_option(e['loc'])}: {error_message(e)}" for e in exc.errors()))
    except ValueError as exc:
        app.abort(f"invalid --budget: {exc}")
    for loc, msg in stimulus.problems() + file_problems(stimulus) + stimulus_problems(stimulus):
        app.abort(f"{_option(loc)}: {msg}")
    rig = load_rig(rig_file).model
    timeline = build_timeline(stimulus, rig)
    if not as_json:  # the JSON report carries them
        for why, n in timeline.dropped.items():
            app.print(f"[dim]left out: {n} {plain(why)}[/]")
    held = find(lock_dir(), rig)
    with nullcontext() if held is not None else Lease(rig.name, wait=lease_wait), scratch_folder("replay") as folder, \
            RigSession(rig, folder, joined=held) as session:
        session.up()
        if held is not None and not as_json:
            app.print(plain(f"joined {held.describe()}"))
        report = _play_with_progress(app, session, timeline, record_to, not spin_only)
    problems = report.over_budget(limits)
    if as_json:
        app.console.print_json(json.dumps({**report.summary(), "left_out": dict(timeline.dropped),
                                           "budget_problems": problems,
                                           "joined": None if held is None else held.describe()}))
    else:
        app.print(report_table(report), level=-1)
        for p in problems:
            app.error(p)
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)


def _play_with_progress(app, session, timeline, record_to, timed):
    """Play ``timeline`` in ``session`` (recording into ``record_to`` if given) under a live bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TextColumn("late max {task.fields[late]}"), TimeElapsedColumn()]
    if record_to:
        session.record(record_to, [n for n, b in session.rig.buses.items() if b.kind == "can" and b.record],
                       metadata={"command": "hil replay"})
    with Progress(*columns, console=app.err_console, disable=app.verbosity < 0, transient=True) as bar:
        task = bar.add_task("replay", total=len(timeline.steps), rate="", late="–")

        def update(p) -> None:
            rate = f"{p.sent / (p.elapsed_ns / 1e9):,.0f} frames/s" if p.elapsed_ns > 0 else ""
            bar.update(task, completed=p.sent, rate=rate, late=_us(p.late_max_ns))

        _, report = session.inject(timeline, timed_release=timed, on_progress=update)
        bar.update(task, completed=report.frames_sent)
    return report


def _us(ns: float | None) -> str:
    return "–" if ns is None or ns != ns else f"{ns / 1000:,.1f} µs"


def report_table(report):
    from rich.table import Table

    t = Table(title="replay error", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("frames", f"{report.frames_sent} sent of {report.frames_planned}, {report.frames_echoed} seen back")
    for k in ("p50", "p99", "p99.9", "max"):
        t.add_row(f"lateness {k}", _us(report.stat(k)))
    t.add_row("frames early", f"[{'red' if report.frames_early else 'green'}]{report.frames_early}[/]")
    t.add_row("span error", f"{report.span_error * 100:+.4f} %")
    for bus, how in (report.host.get("lateness") or {}).items():
        t.add_row(plain(f"lateness on {bus}"), plain(how))
    for bus, unseen in report.unseen.items():
        ids = ", ".join(hex(i) for i in unseen["ids"])
        t.add_row(plain(f"never seen on {bus}"), f"[red]{unseen['count']}[/] {plain(f'(ids {ids})')}")
    for w in report.waits:
        t.add_row("wait", plain(f"{w['wait']}: {'met' if w['met'] else 'timed out'} after {_us(w['waited_ns'])}"))
    if report.aborted:
        t.add_row("aborted", f"[red]{plain(report.aborted)}[/]")
    host = report.host
    t.add_row("timing", f"timer slack {host.get('timer_slack_ns')} ns · PM QoS {host.get('cpu_dma_latency')} · "
              f"timed release on {', '.join(host.get('timed_release') or []) or 'no bus'}")
    return t
