"""Stop signals: one policy for the whole process, installed once by its entry point.

SIGINT (Ctrl-C), SIGTERM (a cancelled CI job) and SIGHUP (the terminal went away) stop a command the
same way. The first one raises :class:`Stopped` — a ``KeyboardInterrupt`` — in the main thread, so
every teardown and ``finally`` runs as for Ctrl-C, and the bench that was running is recorded as
``error`` naming the signal; the command exits 128 + the signal's number (130, 143, 129). Signals
after the first never interrupt the teardown they would cut short: they are noted once. A watchdog
bounds that teardown (``HIL_TEARDOWN_GRACE_S`` seconds, default 60): past it, the stack of every
thread is printed, every supervised child is killed and the process exits anyway.

Inside :func:`shielded` (writing the reports) a stop waits for the block's end; inside
:func:`stopping` (a loop that serves until asked to end: ``hil worker``, ``hil simbus serve``) a
stop asks it to end instead of raising; after :func:`finish` (the command is over, its exit code
decided) a stop changes nothing.

The children hil starts have policies of their own, installed once by their ``main``: a child
that works and is done (the injector) runs its work :func:`as_child`; a child that serves until
its supervisor ends it (the simbus broker, an emulated adapter, an emulated MCU) is
:func:`as_server`.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEFAULT_GRACE_S = 60.0


class Stopped(KeyboardInterrupt):
    """The run was asked to stop: by ``signum``, or (None) cancelled from elsewhere — another
    thread of this process, or the submitter of a bench on a lab host."""

    def __init__(self, signum: int | None = None):
        super().__init__(describe(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


def stopped(exc: KeyboardInterrupt) -> Stopped:
    """``exc`` as a Stopped: a plain KeyboardInterrupt is Ctrl-C (Python's own SIGINT handler)."""
    return exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)


def describe(signum: int | None) -> str:
    """``interrupted (Ctrl-C)``, ``stopped by SIGTERM``, ``cancelled``."""
    if signum is None:
        return "cancelled"
    if signum == signal.SIGINT:
        return "interrupted (Ctrl-C)"
    return f"stopped by {signal.Signals(signum).name}"


class _Policy:
    """The state of the one policy of this process (touched by the main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.shield = 0
        self.pending = False
        self.finished = False
        self.noted = False
        self.grace_s = DEFAULT_GRACE_S
        self.wake = -1  # the watchdog's pipe: a handler may write to a pipe, not take a lock
        self.on_stop: Callable[[], None] | None = None  # set by stopping(): a stop asks instead of raising
        self.asked: Callable[[], None] | None = None  # what the first stop asked (the watchdog calls it)


_policy = _Policy()


def install() -> None:
    """Install the stop policy (main thread only; an entry point calls it once, before any work)."""
    grace = os.environ.get("HIL_TEARDOWN_GRACE_S")
    if grace is not None:
        try:
            _policy.grace_s = float(grace)
        except ValueError:
            sys.stderr.write(f"warning: HIL_TEARDOWN_GRACE_S={grace!r} is not a number of seconds; "
                             f"using {DEFAULT_GRACE_S:g}\n")
    if _policy.wake < 0:
        wait, _policy.wake = os.pipe()
        threading.Thread(target=_watchdog, args=(wait,), name="hil-teardown-watchdog", daemon=True).start()
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)


@contextmanager
def installed() -> Iterator[None]:
    """The stop policy for the block, for an entry point that is a guest in someone else's process
    (the pytest plugin): installed on entry (main thread only; elsewhere signals never land), the
    previous handlers back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    install()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def stopping(on_stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, a stop calls ``on_stop`` instead of raising: for a loop that serves until
    it is asked to end. ``on_stop`` runs on the watchdog's thread, never inside the interrupted
    code, so it may take locks (``loop.call_soon_threadsafe`` does); the watchdog then bounds the
    ending as after any stop."""
    _policy.on_stop = on_stop
    try:
        yield
    finally:
        _policy.on_stop = None


def received() -> int | None:
    """The first stop signal this process received (None: none yet)."""
    return _policy.signum


def finish() -> None:
    """The command is over: from now on a stop signal is only noted (its watchdog still bounds the exit)."""
    _policy.finished = True


@contextmanager
def shielded() -> Iterator[None]:
    """A stop that arrives inside the block is raised when the block ends (main thread; elsewhere
    signals never land anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _policy.shield += 1
    try:
        yield
    finally:
        _policy.shield -= 1
    if _policy.pending and not _policy.shield:
        _policy.pending = False
        raise Stopped(_policy.signum)


def _on_signal(signum: int, _frame: object) -> None:
    if _policy.signum is not None:  # a second signal: the teardown it would cut short goes on
        if not _policy.noted:
            _policy.noted = True
            _say(f"hil: {describe(signum)} again: still tearing down (at most {_policy.grace_s:g} s)\n")
        return
    _policy.signum = signum
    _policy.asked = _policy.on_stop
    os.write(_policy.wake, bytes([signum]))  # wakes the watchdog: it asks (if asked to), then its clock runs
    if _policy.finished or _policy.asked is not None:
        return
    if _policy.shield:
        _policy.pending = True
        return
    raise Stopped(signum)


def _watchdog(wait: int) -> None:
    """Waits (from install on) for the first stop, then bounds the teardown it starts."""
    signum = os.read(wait, 1)[0]
    if _policy.asked is not None:
        _policy.asked()
    time.sleep(_policy.grace_s)
    _say(f"error: teardown did not finish within {_policy.grace_s:g} s of {signal.Signals(signum).name}; "
         "exiting. Where each thread was:\n")
    faulthandler.dump_traceback(sys.stderr.fileno(), all_threads=True)
    from hil.lifecycle import children

    children.kill_all()
    os._exit(128 + signum)


def _say(text: str) -> None:
    """Write to stderr without Python's buffered stream, which the interrupted code may be using."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


@contextmanager
def as_child() -> Iterator[None]:
    """The policy of a hil child process while it works: Ctrl-C reaches the whole terminal group,
    but stopping is its supervisor's decision (ignored); SIGTERM ends the work once, as
    ``SystemExit(143)`` that unwinds its cleanup. Once the work is done, a late SIGTERM ends the
    process quietly instead of raising inside the interpreter's shutdown."""

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)  # the cleanup it starts is not cut short by another
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def as_server(stop: Callable[[], None], *, interrupt: bool = False) -> None:
    """The policy of a hil child process that serves until its supervisor ends it (the simbus
    broker, an emulated adapter, an emulated MCU), for the rest of the process: SIGTERM asks it to
    end by calling ``stop`` once, on a thread of its own (never inside the interrupted code, so
    ``stop`` may take locks: ``threading.Event.set`` does), and the process ends when its serving
    loop returns. SIGINT is ignored: Ctrl-C reaches the whole terminal group, and the rig's
    teardown ends the process in order (the broker last). With ``interrupt`` SIGINT asks it to end
    too: for a process in a session of its own (the emulated MCU, under its leash), which no
    terminal's Ctrl-C reaches by accident, so a SIGINT there is meant."""
    wait, wake = os.pipe()
    os.set_blocking(wake, False)

    def ask() -> None:
        os.read(wait, 1)
        stop()

    def on_signal(_signum: int, _frame: object) -> None:
        try:
            os.write(wake, b"x")
        except BlockingIOError:  # asked many times already: once is enough
            pass

    threading.Thread(target=ask, name="hil-stop", daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal if interrupt else signal.SIG_IGN)
