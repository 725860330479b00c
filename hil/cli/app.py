"""The App object every command gets: all output goes through it, errors go to stderr, and
:func:`run_guarded` is the one place that turns exceptions into exit codes.

Nothing from a spec, a file or a process reaches the terminal raw: the App's consoles show every
control character as an escape (``\x1b``), whoever prints, so a description, a DBC name or a
component's console line cannot retitle, clear or rewrite the terminal; hil's own colours are
added by rich after that and are kept. Text put into a markup string goes through :func:`plain`,
so its brackets are shown rather than read as styles.
"""

from __future__ import annotations

import io
import os
import sys
from functools import cache, cached_property
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import click

from hil.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_USAGE, HilError
from hil.lifecycle.signals import stopped
from hil.text import escape_controls

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
        """A rich console that escapes control characters; when output goes to a file or pipe (CI
        logs) it is wide, so trees and tables are never cut at rich's default 80 columns."""
        console = _safe_console_class()(stderr=stderr, no_color=not self.color, highlight=False, soft_wrap=True)
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

        console.on_broken_pipe = reader_gone  # type: ignore[method-assign]  # rich's hook for this, per console
        return console

    def print(self, *objects: object, level: int = 0) -> None:
        """Print to stdout if the verbosity allows (``level`` 1 = only with -v, -1 = also with -q)."""
        if self.verbosity >= level:
            self.console.print(*objects)

    def warn(self, message: str) -> None:
        self.err_console.print(f"[yellow]warning:[/] {plain(message)}", markup=True)

    def error(self, message: str) -> None:
        self.err_console.print(f"[red]error:[/] {plain(message)}", markup=True)

    def abort(self, message: str, code: int = EXIT_USAGE) -> NoReturn:
        self.error(message)
        raise Abort(code)


def plain(value: object) -> str:
    """``value`` as text for a markup string: its brackets are shown, not read as styles (a
    description "bench [lab B]" lost "[lab B]", and "[/]" ended the command)."""
    from rich.markup import escape

    return escape(str(value))


@cache
def _safe_console_class() -> type[Console]:
    """rich's Console, with control characters in printed text shown as escapes. Every string
    rich turns into text (printed, a table cell, a tree label) passes render_str, where it is
    escaped before layout, so widths stay right (rich would silently drop BEL and CR, and pass
    ESC). Text built elsewhere is caught at render, which yields text segments (escaped) and
    control segments (rich's own cursor moves for live displays, kept); colours come after."""
    from rich.console import Console
    from rich.segment import Segment

    from hil.text import CONTROL, escape_controls

    class SafeConsole(Console):
        def render_str(self, text: str, **kwargs):
            return super().render_str(escape_controls(text), **kwargs)

        def render(self, renderable, options=None):
            for segment in super().render(renderable, options):
                if segment.control is None and CONTROL.search(segment.text):
                    segment = Segment(escape_controls(segment.text), segment.style)
                yield segment

    return SafeConsole


class Seconds(click.ParamType):
    """A number of seconds from 0 to a week; with ``forever``, also ``inf`` (no limit). NaN, a
    negative number or 1e400 is a usage error, not a wait that never ends or ends at once."""

    name = "seconds"
    WEEK = 7 * 24 * 3600.0

    def __init__(self, forever: bool = False):
        self.forever = forever

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        if not (0 <= seconds <= self.WEEK or self.forever and seconds == float("inf")):
            self.fail(f"expected a number of seconds from 0 to {self.WEEK:.0f}" + (" or inf" if self.forever else "")
                      + f", got {value!r}", param, ctx)
        return seconds


def lease_wait_option(command: Callable) -> Callable:
    """``--wait [SECONDS]`` (as ``lease_wait``, seconds or None) for a command that takes a rig's
    lease: fail at once naming the holder (default), queue that long, or as long as it takes."""
    return click.option("--wait", "lease_wait", is_flag=False, flag_value="inf", default=None, metavar="[SECONDS]",
                        type=Seconds(forever=True), help="Wait for a rig someone else holds (for SECONDS, or as "
                        "long as it takes) instead of failing at once.")(command)


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
    except click.ClickException as exc:  # click's usage text quotes the command line: escaped too
        shown = io.StringIO()
        exc.show(file=shown)
        sys.stderr.write(escape_controls(shown.getvalue()))
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
