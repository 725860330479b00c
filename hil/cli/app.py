"""The App object every command gets: all output goes through it, errors go to stderr, and
:func:`run_guarded` is the one place that turns exceptions into exit codes."""

from __future__ import annotations

import os
import sys
from functools import cached_property
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import click

from hil.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_USAGE, HilError
from hil.lifecycle.signals import stopped

if TYPE_CHECKING:
    from rich.console import Console


PIPE_WIDTH = 200


class Abort(Exception):
    """Raised by :meth:`App.abort`: ends the command with ``code`` after the message was printed."""

    def __init__(self, code: int):
        self.code = code


class App:
    """Console, error console, verbosity and the abort path for one CLI invocation."""

    def __init__(self, verbosity: int = 0, color: bool = True, debug: bool = False):
        self.verbosity = verbosity
        self.color = color and not os.environ.get("NO_COLOR")  # no-color.org: set and not empty
        self.debug = debug

    @cached_property
    def console(self) -> Console:
        return self._make_console(stderr=False)

    @cached_property
    def err_console(self) -> Console:
        return self._make_console(stderr=True)

    def _make_console(self, stderr: bool) -> Console:
        """A rich console; when output goes to a file or pipe (CI logs) it is wide, so trees and
        tables are never cut at rich's default 80 columns."""
        from rich.console import Console

        console = Console(stderr=stderr, no_color=not self.color, highlight=False, soft_wrap=True)
        if not console.is_terminal:
            console.width = PIPE_WIDTH

        def reader_gone() -> None:
            """Whoever read this stream went away (``hil run | head``): nothing more is said on it,
            and the run goes on — its results are in its files. (rich's default raised
            SystemExit(1): the running bench was lost from results.json.)"""
            console.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)  # what Python still holds for it goes nowhere
            os.dup2(devnull, (sys.stderr if stderr else sys.stdout).fileno())
            os.close(devnull)

        console.on_broken_pipe = reader_gone
        return console

    def print(self, *objects: object, level: int = 0) -> None:
        """Print to stdout if the verbosity allows (``level`` 1 = only with -v, -1 = also with -q)."""
        if self.verbosity >= level:
            self.console.print(*objects)

    def warn(self, message: str) -> None:
        self.err_console.print(f"[yellow]warning:[/] {message}", markup=True)

    def error(self, message: str) -> None:
        from rich.markup import escape

        self.err_console.print(f"[red]error:[/] {escape(message)}", markup=True)

    def abort(self, message: str, code: int = EXIT_USAGE) -> NoReturn:
        self.error(message)
        raise Abort(code)


def lease_wait_option(command: Callable) -> Callable:
    """``--wait [SECONDS]`` (as ``lease_wait``, seconds or None) for a command that takes a rig's
    lease: fail at once naming the holder (default), queue that long, or as long as it takes."""
    return click.option("--wait", "lease_wait", is_flag=False, flag_value="inf", default=None, metavar="[SECONDS]",
                        callback=_seconds, help="Wait for a rig someone else holds (for SECONDS, or as long "
                        "as it takes) instead of failing at once.")(command)


def _seconds(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise click.BadParameter(f"expected a number of seconds, got {value!r}") from None
    if seconds < 0:
        raise click.BadParameter(f"expected a number of seconds ≥ 0, got {value!r}")
    return seconds


def run_guarded(group: click.Group, argv: list[str] | None) -> int:
    """Run the CLI; map HilError to its exit code, a stop to 128 + its signal (Ctrl-C 130,
    SIGTERM 143), anything else to 3.

    The App exists before arguments are parsed (global flags are pre-scanned), so even a usage
    error honours ``--no-color``; the group's callback then completes it.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    app = App(color="--no-color" not in args, debug="--debug" in args)
    debug = app.debug
    try:
        result = group.main(args=args, prog_name="hil", standalone_mode=False, obj=app)
        return result if isinstance(result, int) else 0
    except Abort as exc:
        return exc.code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:  # Ctrl-C, SIGTERM, SIGHUP; torn down by now
        cause = exc.__context__ if isinstance(exc, click.exceptions.Abort) else exc  # click wraps the stop
        stop = stopped(cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt())
        app.error("interrupted" if stop.exit_code == EXIT_INTERRUPTED else str(stop))
        return stop.exit_code
    except HilError as exc:
        if debug:
            raise
        for problem in exc.lines():
            app.error(problem)
        return exc.exit_code
    except Exception as exc:  # the one place an unexpected error becomes an exit code
        if debug:
            raise
        app.error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_INFRA
