"""Console lines: what targets print, kept per source, and captured from serial ports.

:class:`ConsoleLog` keeps every line a target printed (per component or console bus) so that ready
conditions can wait for a line that may already have arrived, and errors can quote the last lines.
:class:`SerialConsole` reads a serial console from the moment it is opened — before any reset,
flash or power step — so no first line is lost; bytes left over from before a step are dropped and
counted instead of being glued onto the first new line.
"""

from __future__ import annotations

import re
import select
import threading
import time
from collections.abc import Callable

from hil.clock import now_ns
from hil.values import ConsoleLine

TAIL_LINES = 20
KEEP_LINES = 10_000
URL_POLL_S = 0.002  # ports without a file descriptor are polled this often



class ConsoleLog:
    """The lines of one target, per source, with a wait for a line matching a regex.

    Lines are numbered per source from 0 and never renumbered; the oldest are forgotten beyond
    ``keep`` lines per source (the number keeps counting, so a mark taken earlier stays valid).
    """

    def __init__(self, keep: int = KEEP_LINES):
        self._keep = keep
        self._lines: dict[str, list[ConsoleLine]] = {}
        self._dropped: dict[str, int] = {}
        self._cond = threading.Condition()

    def add(self, line: ConsoleLine) -> None:
        with self._cond:
            lines = self._lines.setdefault(line.source, [])
            lines.append(line)
            if len(lines) > self._keep:
                del lines[: len(lines) - self._keep]
                self._dropped[line.source] = self._dropped.get(line.source, 0) + 1
            self._cond.notify_all()

    def mark(self, source: str) -> int:
        """The number the next line of ``source`` will get (wait from here for new lines only)."""
        with self._cond:
            return self._dropped.get(source, 0) + len(self._lines.get(source, []))

    def tail(self, source: str, n: int = TAIL_LINES) -> list[ConsoleLine]:
        with self._cond:
            return list(self._lines.get(source, [])[-n:])

    def find(self, source: str, pattern: re.Pattern[str], since: int = 0,
             timeout_s: float = 0.0) -> ConsoleLine | None:
        """The first line of ``source`` numbered ``since`` or later matching ``pattern``; waits up to
        ``timeout_s`` for one to arrive. None when there is none (yet)."""
        hit = None

        def found() -> bool:
            nonlocal hit
            hit = self._search(source, pattern, since)
            return hit is not None

        with self._cond:
            self._cond.wait_for(found, timeout_s)
        return hit

    def _search(self, source: str, pattern: re.Pattern[str], since: int) -> ConsoleLine | None:
        lines = self._lines.get(source, [])
        first = self._dropped.get(source, 0)
        for line in lines[max(0, since - first):]:
            if pattern.search(line.text):
                return line
        return None


def format_tail(lines: list[ConsoleLine], source: str) -> str:
    """The console tail of a component, ready to append to an error message."""
    if not lines:
        return f"{source} printed nothing"
    body = "\n".join(f"  | {line.text}" for line in lines)
    return f"last {len(lines)} console line(s) of {source}:\n{body}"


class SerialConsole:
    """Reads a serial console in a thread and hands out each line with its run-clock time.

    Open it before any reset, flash or power step. :meth:`step` marks the start of such a step: bytes
    received before it that did not yet form a whole line (and anything still buffered in the port)
    are dropped and counted in :attr:`stale_bytes`. Each line is stamped when its newline arrives.
    The reader waits for bytes without taking them, then takes what is waiting under the same lock
    a step holds, so a step never lands between taking bytes and keeping them.
    The port object is anything with pyserial's ``read``, ``in_waiting``, ``reset_input_buffer``
    and ``close`` (``serial.Serial`` from :meth:`RigBuses.open_serial`); with a ``fileno`` the
    reader sleeps in ``select``, without one (pyserial URL ports) it polls.
    """

    def __init__(self, port, source: str, on_line: Callable[[ConsoleLine], None], poll_s: float = 0.05):
        self.source = source
        self.stale_bytes = 0
        self.lines = 0
        self._port = port
        self._on_line = on_line
        self._poll_s = poll_s
        self._partial = bytearray()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        try:
            self._fd: int | None = port.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self.step()  # whatever sat in the port from before we opened it is stale
        self._thread = threading.Thread(target=self._run, name=f"console-{source}", daemon=True)
        self._thread.start()

    def step(self) -> int:
        """Call right before a reset / flash / power step; returns how many stale bytes it dropped."""
        with self._lock:
            dropped = len(self._partial) + self._port.in_waiting
            self._partial.clear()
            self._port.reset_input_buffer()
            self.stale_bytes += dropped
        return dropped

    def close(self) -> None:
        """Stop reading; a last unterminated line is still handed out. Closes the port."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join()
        with self._lock:
            if self._partial:
                self._emit(bytes(self._partial), now_ns())
                self._partial.clear()
        self._port.close()

    def __enter__(self) -> SerialConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self._wait_readable()
                with self._lock:
                    waiting = self._port.in_waiting
                    chunk = self._port.read(waiting) if waiting else b""
                    if chunk:
                        self._keep(chunk, now_ns())
            except (OSError, ValueError, TypeError):  # port closed under us, or device gone
                return

    def _wait_readable(self) -> None:
        if self._fd is None:
            time.sleep(URL_POLL_S)
        else:
            select.select([self._fd], [], [], self._poll_s)

    def _keep(self, chunk: bytes, t_ns: int) -> None:
        self._partial += chunk
        *whole, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        for raw in whole:
            self._emit(raw, t_ns)

    def _emit(self, raw: bytes | bytearray, t_ns: int) -> None:
        self.lines += 1
        text = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        self._on_line(ConsoleLine(t_ns, self.source, text, "serial"))
