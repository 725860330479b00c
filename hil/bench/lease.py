"""Rig leases: one holder per rig per host, visible to everyone, released on every exit path.

A lease is a lock and its record, nothing more: two files in the lock directory. ``RIG.lock`` is
held with ``flock`` through filelock (the kernel drops it when the holder dies, however it dies);
``RIG.lease.json`` is the record that says who holds it (pid, host, user, command, start time, CI
job). Because the lock is the kernel's, a record whose process is gone is only a leftover: the next
taker reclaims it and logs whose it was. filelock closes its lock descriptors in forked children
(multiprocessing with ``fork``), so a child that outlives the holder never keeps the rig locked.

Whether a rig is held is asked of the kernel without taking its lock (``/proc/locks``), so
``hil rig status`` never makes a run that starts at the same moment fail; and every "busy" message
names the holder — from its record, or, before the holder has written one, from the kernel.

What a holder does on SIGTERM is its entry point's business (:mod:`hil.lifecycle.signals`): the
CLI's stop policy unwinds through every ``finally``, the lease's release included.

The lock directory is ``$HIL_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/hil/leases``, else
``~/.local/share/hil/leases``.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, UTC
from pathlib import Path

from filelock import FileLock, Timeout

from hil import cancel
from hil.clock import now_ns
from hil.errors import RigBusyError, UsageError
from hil.lifecycle import procfs

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
                   started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                   started_ns=now_ns(), ci_job=job)

    @property
    def holder_alive(self) -> bool | None:
        """Whether the holder process still runs (None when it is on another host)."""
        if self.host != socket.gethostname():
            return None
        return procfs.alive(self.pid)

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
    holder: str | None = None  # when held: who holds it (:func:`describe_holder`)

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
        self.record: LeaseRecord | None = None
        self.reclaimed: LeaseRecord | None = None

    @property
    def record_path(self) -> Path:
        return self.directory / f"{self.rig}.lease.json"

    def acquire(self) -> LeaseRecord:
        if not _try_lock(self._lock):
            holder = describe_holder(self.directory, self.rig)
            if self.wait is None or self.wait <= 0:
                raise RigBusyError(f"rig {self.rig!r} is leased by {holder}; wait for it with --wait [SECONDS]")
            message = (f"rig {self.rig!r} is leased by {holder}; waiting "
                       + ("until it is free" if self.wait == float("inf") else f"up to {self.wait:g} s"))
            log.info("%s", message)
            if self.on_wait is not None:
                self.on_wait(message)
            deadline = time.monotonic() + self.wait
            while not _try_lock(self._lock):
                cancel.check()  # a rig thread of a cancelled run stops queueing
                if time.monotonic() >= deadline:
                    holder = describe_holder(self.directory, self.rig)
                    raise RigBusyError(f"rig {self.rig!r} is still leased by {holder} after waiting {self.wait:g} s")
                time.sleep(POLL_S)
        try:
            self._take_over()
        except BaseException:
            self._lock.release()
            raise
        return self.record  # type: ignore[return-value]

    def _take_over(self) -> None:
        """Holding the lock: log a leftover record, write ours."""
        left = read_record(self.record_path)
        if left is not None and left.pid != os.getpid():
            self.reclaimed = left
            state = {True: "still running but no longer holding the lock", False: "gone",
                     None: "on another host"}[left.holder_alive]
            log.warning("rig %r: reclaimed the lease of %s (holder %s)", self.rig, left.describe(), state)
        self.record = LeaseRecord.for_this_process(self.rig, self._command, self._ci_job)
        _write_atomic(self.record_path, json.dumps(asdict(self.record), indent=2) + "\n")

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            if self.record is not None and read_record(self.record_path) == self.record:
                self.record_path.unlink(missing_ok=True)
        finally:
            self._lock.release()
            self.record = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def status(rig: str, directory: Path | None = None) -> LeaseStatus:
    """One rig's lease as the kernel has it: asked, never taken, so a run starting meanwhile is
    never refused because of it."""
    directory = directory or lock_dir()
    held = bool(procfs.flock_holders(directory / f"{rig}.lock"))
    return LeaseStatus(rig, held=held, record=read_record(directory / f"{rig}.lease.json"),
                       holder=describe_holder(directory, rig) if held else None)


def describe_holder(directory: Path, rig: str) -> str:
    """The holder of ``rig``'s lock for a "busy" message: its record when the record is the
    holder's, else the process the kernel names (a holder that has not written its record yet)."""
    record = read_record(directory / f"{rig}.lease.json")
    holders = procfs.flock_holders(directory / f"{rig}.lock")
    if record is not None and (record.pid in holders or record.host != socket.gethostname() or not holders):
        return record.describe()
    if holders:
        pid = holders[0]
        return f"pid {pid} running {procfs.cmdline(pid) or '(gone)'!r} (it has not written its lease record yet)"
    return "another process (it let go meanwhile)"


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
