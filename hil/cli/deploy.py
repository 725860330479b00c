"""``hil deploy RIG STACK``: deploy, start and wait ready on every target, then stay up until Ctrl-C.

Progress (:class:`DeployView`) is a live table per target on a terminal and one line per step
otherwise (CI logs, pipes). Console lines go to ``RUN_DIR/consoles/SOURCE.log`` (and to the screen
with ``-v``). Once the stack is up, the rig accepts joiners: ``hil record`` and ``hil replay`` of the same user on this host
work on it (:mod:`hil.session.held`). Ctrl-C or SIGTERM once the stack is up ends the deploy
normally (exit 0) after tearing everything down; during bring-up it is an interruption (exit 130),
and teardown still runs.
"""

from __future__ import annotations

from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hil.cli.app import App, Seconds, lease_wait_option, plain

if TYPE_CHECKING:
    from rich.live import Live
    from hil.targets.deployment import DeployStep


@click.command()
@click.argument("rig_file", metavar="RIG", type=click.Path(dir_okay=False))
@click.argument("stack_file", metavar="STACK", type=click.Path(dir_okay=False))
@click.option("--bundle", type=click.Path(dir_okay=False, exists=True),
              help="A bundle from `hil stack build` (checked against STACK) instead of building one.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the sandbox, bundle and console logs (default: runs/deploy-STACK-YYYYmmdd-HHMMSS).")
@click.option("--power-cycle", is_flag=True, help="Cycle each target's power switch before deploying.")
@click.option("--timeout", "timeout_s", type=Seconds(), default=None,
              help="Cap every ready condition's own timeout at this many seconds.")
@click.option("--for", "hold_s", type=Seconds(), default=None,
              help="Tear down after this many seconds instead of waiting for Ctrl-C.")
@lease_wait_option
@click.pass_obj
def deploy(app: App, rig_file: str, stack_file: str, bundle: str | None, run_dir: str | None,
           power_cycle: bool, timeout_s: float | None, hold_s: float | None, lease_wait: float | None) -> None:
    """Deploy STACK onto RIG's targets, start it, wait until ready, and keep it running until Ctrl-C."""
    from hil.bench.lease import Lease
    from hil.bench.plan import stack_problems
    from hil.clock import now_ns
    from hil.errors import SpecError
    from hil.session import RigSession
    from hil.session.folders import CONSOLES, run_folder
    from hil.spec import check_files
    from hil.targets.deployment import drivers

    checked = check_files(rig_file, [stack_file])
    rig, stack_spec = checked.rig.model, checked.stacks[Path(stack_file)]
    problems = stack_problems(stack_spec, rig)  # what deploying would refuse, before a bus is up
    if problems:
        raise SpecError(problems)
    stack = stack_spec.model
    folder = run_folder(f"deploy-{stack.name}", run_dir, datetime.now(UTC))
    folder.mkdir(parents=True, exist_ok=True)
    logs = plain(folder / CONSOLES)
    progress = DeployView(app)

    def on_console(line) -> None:
        app.print(f"[dim]{plain(line.source)}[/] {plain(line.text)}", level=1)

    up = False
    try:
        with Lease(rig.name, wait=lease_wait) as lease, \
                RigSession(rig, folder, on_target=progress.event, on_console=on_console) as session:
            progress.start(drivers(rig, stack))
            try:
                session.up()
                session.deploy(stack, bundle=Path(bundle) if bundle else None, power_cycle=power_cycle,
                               timeout_ns=int(timeout_s * 1e9) if timeout_s is not None else None)
                session.accept_joiners(lease.directory)
                up = True
                progress.pause(f"[green]{stack.name} {stack.version} is up[/] on {rig.name}; "
                               + ("Ctrl-C to stop" if hold_s is None else f"stopping in {hold_s:g}s")
                               + f" · logs in {logs}")
                session.hold(None if hold_s is None else now_ns() + int(hold_s * 1e9))
            except KeyboardInterrupt:
                if not up:
                    raise
            finally:
                progress.resume()
    finally:
        progress.stop()
    app.print(f"torn down; logs in {logs}", level=-1)


class DeployView:
    """Per-target progress: a rich live table on a terminal, one plain line per step otherwise."""

    def __init__(self, app: App):
        self.app = app
        self.rows: dict[str, list[str]] = {}
        self.live: Live | None = None

    def start(self, drivers: dict[str, str]) -> None:
        self.rows = {name: [key, "idle", ""] for name, key in drivers.items()}
        self.resume()

    def resume(self) -> None:
        """Show the live table (again) on a terminal."""
        if self.live is None and self.app.console.is_terminal and self.app.verbosity >= 0:
            from rich.live import Live

            self.live = Live(self._table(), console=self.app.console, refresh_per_second=8)
            self.live.start()

    def event(self, e: DeployStep) -> None:
        row = self.rows.setdefault(e.target, ["", "", ""])
        row[1:] = [e.phase, e.detail]
        if self.live is not None:
            self.live.update(self._table())
        else:
            self.app.print(plain(f"{e.target}: {e.phase}" + (f" — {e.detail}" if e.detail else "")), level=0)

    def pause(self, message: str) -> None:
        """Leave the table on screen and print ``message`` below it."""
        self.stop()
        self.app.print(message, level=-1)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _table(self):
        from rich.table import Table

        colours = {"ready": "green", "failed": "red", "stopped": "dim"}
        table = Table(box=None, pad_edge=False)
        for col in ("target", "driver", "state", ""):
            table.add_column(col)
        for name, (key, phase, detail) in self.rows.items():
            c = colours.get(phase, "yellow")
            table.add_row(name, key, f"[{c}]{phase}[/]", plain(detail))
        return table
