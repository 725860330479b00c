"""``hil run SUITE --rig RIG``: run a suite's benches on a rig, print the verdicts, write the run folder."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App
from hil.cli.lab import lab_options, run_on_rigs
from hil.values import Verdict


MAX_REPEAT = 10_000  # benches × repeats are planned up front


@click.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--rig", "rigs", envvar="HIL_RIG", required=True, multiple=True, metavar="RIG",
              help="Rig file (also HIL_RIG); with --scheduler also a rig name. Repeat it to run the "
                   "suite on several rigs at once, side by side.")
@click.option("--bench", "benches", multiple=True, metavar="NAME", help="Run only this bench (repeatable).")
@click.option("--stack", "stacks", multiple=True, metavar="OLD=NEW", callback=lambda ctx, param, value: _pairs(value),
              help="Deploy stack file NEW wherever the suite names OLD (repeatable); both paths as the "
                   "suite would write them, relative to its folder.")
@click.option("--repeat", type=click.IntRange(min=1, max=MAX_REPEAT), default=1, show_default=True,
              help="Run the selected benches N times.")
@click.option("--fail-fast", is_flag=True, help="Skip the remaining benches after the first fail or error.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: runs/SUITE-YYYYmmdd-HHMMSS).")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path), envvar="HIL_HISTORY",
              help="History database (default: in the user's data folder; also HIL_HISTORY).")
@click.option("--no-history", is_flag=True, help="Do not record this run in the history database.")
@lab_options
@click.pass_obj
def run(app: App, suite: str, rigs: tuple[str, ...], benches: tuple[str, ...], stacks: dict[str, str], repeat: int,
        fail_fast: bool, out: Path | None, history: Path | None, no_history: bool, **lab: object) -> int:
    """Run SUITE on the rig: exit 0 all passed, 1 a bench failed, 3 infrastructure error."""
    from hil.bench import SuiteOptions

    def on_event(event) -> None:
        if event.phase not in ("done",):
            app.print(f"[dim]{event.bench}: {event.phase}[/]", level=1)

    def on_result(bench) -> None:
        style = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.ERROR: "bold red"}.get(bench.verdict, "dim")
        where = f" on {bench.rig}" if len(rigs) > 1 else ""
        app.print(f"[{style}]{bench.verdict:7}[/] {bench.key}{where} ({bench.duration_s:.1f} s)")
        for warning in bench.warnings:
            app.warn(f"{bench.key}{where}: {warning}")

    options = SuiteOptions(
        benches=list(benches) or None, stacks=stacks, repeat=repeat, fail_fast=fail_fast, out=out, history=history,
        record_history=not no_history, on_event=on_event, on_result=on_result)
    return run_on_rigs(app, suite, list(rigs), options, lab)


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    """``--stack OLD=NEW`` options as OLD → NEW."""
    pairs: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise click.BadParameter(f"expected OLD=NEW (two stack files), got {value!r}")
        if old in pairs and pairs[old] != new:
            raise click.BadParameter(f"{old} is replaced twice: by {pairs[old]} and by {new}")
        pairs[old] = new
    return pairs
