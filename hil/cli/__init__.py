"""The ``hil`` command line: a click group whose commands are imported only when used.

Each command lives in its own module (``hil/cli/<name>.py``) and is listed in :data:`COMMANDS`,
so ``hil --help`` stays fast however many heavy libraries the commands need.
"""

from __future__ import annotations

import importlib
import sys

import click

from hil import __version__
from hil.cli.app import App, run_guarded

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attribute, one-line help shown by `hil --help` without importing the module)
    "check": ("hil.cli.check:check", "Validate a rig (and suites, stacks) and show its topology."),
    "run": ("hil.cli.run:run", "Run a suite's benches on a rig; print verdicts, write the run folder."),
    "analyze": ("hil.cli.analyze:analyze", "Re-analyse a recording with a bench's probes and limits."),
    "history": ("hil.cli.history:history", "Runs in the history database; measurement trends."),
    "compare": ("hil.cli.compare:compare", "Compare the measurements of two runs."),
    "replay": ("hil.cli.replay:replay", "Inject recorded CAN logs / MCAP / serial captures onto a rig with exact timing."),
    "record": ("hil.cli.record:record", "Record every bus of a rig into one MCAP file."),
    "export": ("hil.cli.export:export", "Convert a recording's CAN frames to BLF, ASC, MF4, CSV."),
    "doctor": ("hil.cli.doctor:doctor", "How fit this host is for exact replay timing, with advice."),
    "schema": ("hil.cli.schema:schema", "Print the JSON Schema of a rig, suite or stack file."),
    "plugins": ("hil.cli.plugins:plugins", "List the registries (targets, flash methods, ...) and the plugins in them."),
    "simbus": ("hil.cli.simbus:simbus", "Serve a rig's emulated CAN and serial buses by hand (simbus serve)."),
    "deploy": ("hil.cli.deploy:deploy", "Deploy a stack onto a rig's targets and keep it running until Ctrl-C."),
    "firmware": ("hil.cli.firmware:firmware", "Firmware images: build one from a stub folder, show an image's header."),
    "flash": ("hil.cli.flash:flash", "Flash an image onto one MCU target of a rig with the rig's flash method."),
    "stack": ("hil.cli.stack:stack", "Stack bundles: build a versioned archive with a checksum manifest."),
    "rig": ("hil.cli.rig:rig", "Rig leases and health: who holds a rig, is it healthy."),
    "worker": ("hil.cli.worker:worker", "Serve this host's rigs to a Dask scheduler (lab hosts)."),
}


def _app(ctx: click.Context) -> App:
    return ctx.ensure_object(App)


def _more(ctx: click.Context, param: click.Parameter, count: int) -> None:
    _app(ctx).verbosity += count


def _less(ctx: click.Context, param: click.Parameter, count: int) -> None:
    _app(ctx).verbosity -= count


def _no_color(ctx: click.Context, param: click.Parameter, flag: bool) -> None:
    if flag:
        _app(ctx).color = False


def _debug(ctx: click.Context, param: click.Parameter, flag: bool) -> None:
    if flag:
        _app(ctx).debug = True


def global_options(hidden: bool = False) -> list[click.Option]:
    """``-v``, ``-q``, ``--no-color`` and ``--debug``: they set the App as they are parsed, so they
    mean the same before the command name (``hil -v replay``) and after it (``hil replay -v``)."""
    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_more, hidden=hidden,
                     help="More output (repeatable)."),
        click.Option(["-q", "--quiet"], count=True, expose_value=False, callback=_less, hidden=hidden,
                     help="Less output (repeatable)."),
        click.Option(["--no-color"], is_flag=True, expose_value=False, callback=_no_color, hidden=hidden,
                     help="No colours (also NO_COLOR set to anything but empty)."),
        click.Option(["--debug"], is_flag=True, expose_value=False, callback=_debug, hidden=hidden,
                     help="Show tracebacks for errors."),
    ]


def _accept_global_options(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) the global options, once per process."""
    if not getattr(command, "_hil_global_options", False):
        command.params.extend(global_options(hidden=True))
        command._hil_global_options = True  # type: ignore[attr-defined]
        for sub in getattr(command, "commands", {}).values():
            _accept_global_options(sub)
    return command


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return _accept_global_options(getattr(importlib.import_module(module), attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, params=global_options(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hil")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """hil — deploy, inject, record, measure: hardware-in-the-loop benches on real or emulated rigs.

    \b
    Exit codes: 0 pass · 1 a bench failed · 2 usage or spec error · 3 infrastructure error
                130 interrupted
    """
    _app(ctx)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one stop policy for the process, one abort path for every error."""
    from hil.lifecycle import signals

    signals.install()
    code = run_guarded(cli, argv)
    signals.finish()  # a stop signal from here on cannot cut anything short: the command is over
    sys.exit(code)
