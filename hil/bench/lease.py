"""Rig leases: one holder per rig per host, visible to everyone, released on every exit path.

A lease is two files in the lock directory: ``RIG.lock``, held with ``flock`` through filelock (the
kernel drops it when the holder dies, however it dies), and ``RIG.lease.json``, the record that says
who holds it (pid, host, user, command, start time, CI job). Because the lock is the kernel's, a
record whose process is gone is only a leftover: the next taker reclaims it and logs whose it was.

The lock directory is ``$HIL_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/hil/leases``, else
``~/.local/share/hil/leases``.

While a lease is held, SIGTERM raises :class:`SystemExit` in the main thread (instead of killing the
process outright), so ``finally`` blocks — teardown and the lease release — run for it as they do for
Ctrl-C. filelock closes its lock descriptors in forked children (multiprocessing with ``fork``), so a
child that outlives the holder never keeps the rig locked.
"""

from __future__ import annotations

import faulthandler
import getpass
import json
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hil import cancel
from hil.clock import now_ns
from hil.errors import RigBusyError, UsageError

log = logging.getLogger(__name__)

#: How often a run queued for a busy rig tries the lock again, seconds.
POLL_S = 0.1
#: Environment variables naming the CI job that holds a lease (first one set wins).
CI_JOB_VARS = ("HIL_CI_JOB", "CI_JOB_URL", "BUILD_URL", "CI_JOB_ID", "BUILD_TAG", "GITHUB_RUN_ID")


def lock_dir() -> Path:
    """Where lease files live (created 0700 on first use)."""
    if env := os.environ.get("HIL_LOCK_DIR"):
        path = Path(env)
    elif runtime := os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(runtime) / "hil" / "leases"
    else:
        path = Path.home() / ".local" / "share" / "hil" / "leases"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds a rig: written when the lease is taken, shown by ``hil rig status``."""

    rig: str
    pid: int
    host: str
    user: str
    command: str
    started_at: str  # wall-clock ISO 8601 (UTC), for people
    started_ns: int  # run clock, for durations on this host
    ci_job: str | None = None

    @classmethod
    def for_this_process(cls, rig: str, command: str | None = None, ci_job: str | None = None) -> LeaseRecord:
        job = ci_job or next((os.environ[v] for v in CI_JOB_VARS if os.environ.get(v)), None)
        return cls(rig=rig, pid=os.getpid(), host=socket.gethostname(), user=_user(),
                   command=command if command is not None else " ".join(sys.argv),
                   started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   started_ns=now_ns(), ci_job=job)

    @property
    def holder_alive(self) -> bool | None:
        """Whether the holder process still runs (None when it is on another host)."""
        if self.host != socket.gethostname():
            return None
        return _pid_alive(self.pid)

    def describe(self) -> str:
        """``pid 123 (alice@lab-3) running 'hil run ...' since 2026-... (4m12s), CI job X``."""
        held = ""
        if self.host == socket.gethostname():
            held = f" ({_age((now_ns() - self.started_ns) // 1_000_000_000)})"
        job = f", CI job {self.ci_job}" if self.ci_job else ""
        return (f"pid {self.pid} ({self.user}@{self.host}) running {self.command!r} "
                f"since {self.started_at}{held}{job}")


@dataclass(frozen=True)
class LeaseStatus:
    """What ``hil rig status`` shows for one rig: held or free, and by whom."""

    rig: str
    held: bool
    record: LeaseRecord | None  # when free: a leftover record of a holder that is gone, if any

    @property
    def stale(self) -> bool:
        return not self.held and self.record is not None


class Lease:
    """The lease of one rig, as a context manager.

    ``wait`` is None to fail at once when the rig is taken (the error names the holder), a number of
    seconds to queue for it, or ``float('inf')`` to wait as long as it takes; ``on_wait`` is told
    whom it waits for.
    """

    def __init__(self, rig: str, *, wait: float | None = None, command: str | None = None,
                 ci_job: str | None = None, directory: Path | None = None,
                 on_wait: Callable[[str], None] | None = None):
        self.rig = rig
        self.wait = wait
        self.on_wait = on_wait
        self.directory = directory or lock_dir()
        self._command, self._ci_job = command, ci_job
        self._lock = FileLock(self.directory / f"{rig}.lock", mode=_file_mode(self.directory), thread_local=False,
                              preserve_lock_file=True)
        self._restore_sigterm: Any = None
        self.record: LeaseRecord | None = None
        self.reclaimed: LeaseRecord | None = None

    @property
    def record_path(self) -> Path:
        return self.directory / f"{self.rig}.lease.json"

    def acquire(self) -> LeaseRecord:
        if not _try_lock(self._lock):
            holder = read_record(self.record_path)
            if self.wait is None or self.wait <= 0:
                raise RigBusyError(f"rig {self.rig!r} is leased by {_who(holder)}; "
                                   f"wait for it with --wait [SECONDS]")
            message = (f"rig {self.rig!r} is leased by {_who(holder)}; waiting "
                       + ("until it is free" if self.wait == float("inf") else f"up to {self.wait:g} s"))
            log.info("%s", message)
            if self.on_wait is not None:
                self.on_wait(message)
            deadline = time.monotonic() + self.wait
            while not _try_lock(self._lock):
                cancel.check()  # a rig thread of a cancelled run stops queueing
                if time.monotonic() >= deadline:
                    raise RigBusyError(f"rig {self.rig!r} is still leased by "
                                       f"{_who(read_record(self.record_path))} after waiting {self.wait:g} s")
                time.sleep(POLL_S)
        try:
            self._take_over()
        except BaseException:
            self._lock.release()
            raise
        return self.record  # type: ignore[return-value]

    def _take_over(self) -> None:
        """Holding the lock: log a leftover record, write ours, catch SIGTERM."""
        left = read_record(self.record_path)
        if left is not None and left.pid != os.getpid():
            self.reclaimed = left
            state = {True: "still running but no longer holding the lock", False: "gone",
                     None: "on another host"}[left.holder_alive]
            log.warning("rig %r: reclaimed the lease of %s (holder %s)", self.rig, left.describe(), state)
        self.record = LeaseRecord.for_this_process(self.rig, self._command, self._ci_job)
        _write_atomic(self.record_path, json.dumps(asdict(self.record), indent=2) + "\n")
        self._restore_sigterm = sigterm_raises(on_overdue=self.drop_record)

    def drop_record(self) -> None:
        """Remove this holder's lease record (the lock itself goes with the process)."""
        if self.record is not None and read_record(self.record_path) == self.record:
            self.record_path.unlink(missing_ok=True)

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            self.drop_record()
        finally:
            self._lock.release()
            self.record = None
            if self._restore_sigterm is not None:
                self._restore_sigterm()
                self._restore_sigterm = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def status(rig: str, directory: Path | None = None) -> LeaseStatus:
    """Probe one rig's lease without taking it (a free lock is taken and dropped at once)."""
    directory = directory or lock_dir()
    record = read_record(directory / f"{rig}.lease.json")
    if not (directory / f"{rig}.lock").exists():
        return LeaseStatus(rig, held=False, record=record)
    probe = FileLock(directory / f"{rig}.lock", mode=_file_mode(directory), thread_local=False,
                     preserve_lock_file=True)
    if _try_lock(probe):
        probe.release()
        return LeaseStatus(rig, held=False, record=record)
    return LeaseStatus(rig, held=True, record=read_record(directory / f"{rig}.lease.json"))


def known_rigs(directory: Path | None = None) -> list[str]:
    """Rigs that have (or had) a lease in the lock directory."""
    directory = directory or lock_dir()
    return sorted(p.name.removesuffix(".lock") for p in directory.glob("*.lock"))


def read_record(path: Path) -> LeaseRecord | None:
    """The lease record at ``path``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
        return LeaseRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


# -- helpers ----------------------------------------------------------------------------------------


def _try_lock(lock: FileLock) -> bool:
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return False
    except PermissionError:
        raise UsageError(f"cannot open the lease file {lock.lock_file}: permission denied. Everyone who "
                         "shares a rig needs read and write access to the lock directory and its files: make it "
                         "group-writable with the setgid bit (see docs/lab.md)") from None
    return True


def _who(record: LeaseRecord | None) -> str:
    return record.describe() if record else "another process (no lease record yet)"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = _file_mode(path.parent)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # whatever the umask: the other lab accounts must be able to replace it
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _file_mode(directory: Path) -> int:
    """Lease files are the user's own (0600), or the group's too (0660) in a group-writable lock
    directory: the one a lab host shares between its accounts."""
    return 0o660 if directory.stat().st_mode & stat.S_IWGRP else 0o600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: it holds nothing any more
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _age(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def sigterm_raises(on_overdue: Callable[[], None] | None = None):
    """Make SIGTERM raise SystemExit(143) while a lease is held; return the undo (or None).

    Teardown after SIGTERM is bounded: a cancelled CI job must end. If the process is still alive
    ``HIL_TEARDOWN_GRACE_S`` (default 60) seconds after the signal, ``on_overdue`` runs (it removes
    the lease record) and the process exits with 143 anyway; its targets end with it through their
    leashes, and the kernel drops its lock.

    Only the main thread can install handlers; a handler somebody else installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def on_sigterm(signum: int, frame: object) -> None:
        threading.Thread(target=_exit_when_overdue, args=(128 + signum, on_overdue), daemon=True,
                         name="hil-teardown-watchdog").start()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_when_overdue(code: int, on_overdue: Callable[[], None] | None) -> None:
    time.sleep(float(os.environ.get("HIL_TEARDOWN_GRACE_S", "60")))
    sys.stderr.write(f"error: teardown did not finish within {os.environ.get('HIL_TEARDOWN_GRACE_S', '60')} s "
                     f"of SIGTERM; exiting (targets end with their leashes). Where each thread was:\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(sys.stderr, all_threads=True)
    if on_overdue is not None:
        on_overdue()
    os._exit(code)
