"""Helpers of the kill tests: run ``hil`` as a user would, mark every process it starts, and find
them afterwards in /proc — by the marker environment variable each test sets (every process a run
starts inherits it), never by name, because other runs of hil share this host."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "HIL_KILL_TEST"
#: bounds a wait for something that must happen; never a timing assertion (the host is busy)
PATIENCE_S = 120.0


def marked(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``MARK=token``."""
    needle = f"{MARK}={token}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env.split(b"\0") and state != "Z":
            out.append(int(entry))
    return out


def describe(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            out.append(f"{pid}: gone")
    return out


def survivors(token: str, wait_s: float = 30.0) -> list[str]:
    """What still runs of a finished run after ``wait_s`` (processes told to stop may take a moment)."""
    end = time.monotonic() + wait_s
    while (left := marked(token)) and time.monotonic() < end:
        time.sleep(0.1)
    left = marked(token)
    for pid in left:  # leave nothing behind, whatever the test says
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return describe(left)


def find(token: str, *words: str, leash: bool = False) -> int | None:
    """The marked process whose command line holds every one of ``words`` — the leash that runs
    it when ``leash`` (a leash's command line holds its component's)."""
    for pid in marked(token):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(w in cmd for w in words) and ("hil.lifecycle.leash" in cmd) == leash:
            return pid
    return None


def wait_find(token: str, *words: str, leash: bool = False) -> int:
    end = time.monotonic() + PATIENCE_S
    while (pid := find(token, *words, leash=leash)) is None:
        assert time.monotonic() < end, f"no process {words} of the run"
        time.sleep(0.05)
    return pid


def side_by_side(cases: list, run, workers: int = 4) -> dict:
    """``run(case)`` for every case, ``workers`` at a time (the strikes mostly wait for moments)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(cases, pool.map(run, cases)))


class Hil:
    """``hil ARGS`` in its own session (as a shell runs a foreground job), marked; its stdout lines
    arrive on a queue so a test can act on the run's progress."""

    def __init__(self, tmp: Path, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
                 command: tuple[str, ...] = (sys.executable, "-m", "hil"), read_lines: int | None = None):
        self.token = uuid.uuid4().hex
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if k not in ("HIL_RIG", "HIL_HISTORY")}
        self.env.update(NO_COLOR="1", COLUMNS="200", HIL_LOCK_DIR=str(tmp / "locks"),
                        HIL_HISTORY=str(tmp / "history.sqlite"), **{MARK: self.token}, **(env or {}))
        self.err_path = tmp / f"stderr-{self.token}.txt"
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([*command, *args], cwd=cwd, env=self.env,
                                         stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        self.read_lines = read_lines  # then stop reading: close the pipe, as `| head` does
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line.rstrip("\n"))
            if len(self.stdout) == self.read_lines:
                self.proc.stdout.close()
                break
        self.lines.put(None)

    def wait_for(self, predicate, what: str) -> str:
        """The first stdout line for which ``predicate`` holds (fails if the run ends first)."""
        end = time.monotonic() + PATIENCE_S
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"hil ended before {what}: {''.join(self.stdout)}{self.err_path.read_text()}")
            if predicate(line):
                return line
        raise AssertionError(f"no {what} within {PATIENCE_S} s")

    def signal(self, sig: int, group: bool = False) -> None:
        """Send ``sig`` to hil (or, as a terminal does for Ctrl-C, to its whole foreground group)."""
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def finish(self) -> tuple[int, str, str]:
        try:
            self.proc.wait(PATIENCE_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        self.proc.stdout.close()
        return self.proc.returncode, "".join(self.stdout), self.err_path.read_text()
