"""What /proc says about processes: parents, states, start times, environments — and who holds a
``flock``. Everything here reads; nothing signals. A process that ends while it is being read is
simply not there."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stat:
    """The fields of ``/proc/PID/stat`` hil uses. ``start`` is the start time in clock ticks since
    boot: with the pid it names one process for good (a pid is reused, the pair is not)."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def stat(pid: int) -> Stat | None:
    """The process ``pid``, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return Stat(pid, f[0], int(f[1]), int(f[2]), int(f[3]), int(f[19]))


def processes() -> dict[int, Stat]:
    """Every process this one can see."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := stat(int(entry))) is not None:
            out[s.pid] = s
    return out


def alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` runs (a zombie has ended); with ``start``, whether it is still that process."""
    s = stat(pid)
    return s is not None and not s.zombie and (start is None or s.start == start)


def descendants(pid: int, procs: dict[int, Stat] | None = None) -> list[int]:
    """Every process below ``pid`` (zombies included: they are someone's to reap), parents first."""
    procs = processes() if procs is None else procs
    kids: dict[int, list[int]] = {}
    for s in procs.values():
        kids.setdefault(s.ppid, []).append(s.pid)
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def environ(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with (empty when unreadable: another user's, a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, eq, value = item.partition(b"=")
        if eq:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def marked(name: str, value: str | None = None) -> dict[int, str]:
    """Live processes started with environment variable ``name`` (set to ``value``, if given):
    pid → its value."""
    needle = f"{name}=".encode()
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        for item in raw.split(b"\0"):
            if item.startswith(needle):
                found = item[len(needle):].decode(errors="replace")
                if value is None or found == value:
                    out[int(entry)] = found
                break
    return {pid: v for pid, v in out.items() if alive(pid)}


def cmdline(pid: int) -> str:
    """The command line of ``pid`` as one string ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def flock_holders(path: Path) -> list[int]:
    """Processes holding a ``flock`` on ``path``, from /proc/locks — read, never taken.

    /proc/locks names a lock's file by device and inode (``fe:00:2148416``) and its holder by the
    pid that took it (a child forked later inherits the lock but is not named)."""
    try:
        st = path.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return []
    me = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    out = []
    for line in locks.splitlines():
        f = line.split()
        if len(f) >= 6 and f[1] == "FLOCK" and f[5] == me and f[4].isdigit():
            out.append(int(f[4]))
    return out
