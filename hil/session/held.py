"""A rig held open for joiners: what its holder publishes, and how a joiner finds and checks it.

``hil deploy`` keeps a rig up until Ctrl-C. So that ``hil record`` and ``hil replay`` can work on
that rig (rather than fail on its lease, or bring up buses of their own that the stack never
sees), the holder publishes a **session descriptor** beside the rig's lease record:
``LOCKDIR/RIG.session.json`` — its pid and start time, its command and folder, the rig's buses as
it brought them up, where its simbus broker and emulated adapters serve them (socket, pty and port),
the run clock's epoch offset, which serial buses it reads as consoles, and its recording. It is
withdrawn first thing at teardown.

A joiner trusts a descriptor only when it is a regular file of this user that no one else may read
or write (0600: a group-shared lock folder lets others replace a file, never forge one of ours),
when the process that wrote it still runs (pid and start time, so a reused pid is not it), and
when it describes the rig's buses as the joiner's rig file does. A joiner attaches to the buses and
nothing else: it takes no lease, starts and stops nothing of the holder's, and adopts the holder's
epoch offset, so both recordings put a frame at the same Unix time.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hil.clock import epoch_offset_ns
from hil.errors import UsageError
from hil.files import FileRefused, open_regular
from hil.lifecycle import procfs
from hil.spec.rig import Rig

FORMAT = "hil-session/1"
LIMIT = 1 << 20  # a descriptor is a few kB


@dataclass(frozen=True)
class Held:
    """The session holding a rig, as its descriptor says."""

    rig: str
    pid: int
    start: int  # the holder's start time (clock ticks since boot): with the pid, it names the holder for good
    command: str
    folder: str
    buses: dict[str, Any]  # bus name → its spec as JSON: a joiner's rig file must say the same
    broker: dict[str, Any] | None  # the simbus broker's attach info (pid, CAN sockets, serial ptys)
    adapters: dict[str, Any]  # bus name → its emulated adapter's attach info (pid, channel or port)
    starts: dict[str, int]  # pid → start time of the broker and each adapter
    epoch_offset_ns: int  # the run clock's epoch offset the holder's buses stamp with
    consoles: list[str]  # serial buses the holder reads as consoles: a tty has one reader
    recording: str | None  # the holder's recording, while it records
    format: str = FORMAT

    @classmethod
    def of_this_process(cls, rig: Rig, folder: Path, attach: dict[str, Any], consoles: set[str],
                        recording: Path | None) -> Held:
        """The descriptor of a session this process holds; ``attach`` is its buses'
        :meth:`hil.buses.RigBuses.attach_info`."""
        me = os.getpid()
        services = [attach["broker"], *attach["adapters"].values()] if attach["broker"] else []
        return cls(rig.name, me, _start(me), " ".join(sys.argv), str(Path(folder).absolute()), bus_specs(rig),
                   attach["broker"], attach["adapters"], {str(s["pid"]): _start(s["pid"]) for s in services},
                   epoch_offset_ns(), sorted(consoles), None if recording is None else str(Path(recording).absolute()))

    def alive(self) -> bool:
        """Whether the holder still runs."""
        return procfs.alive(self.pid, self.start)

    def describe(self) -> str:
        """``the session holding rig 'sim-aeb' (pid 4711 running 'hil deploy …')``."""
        return f"the session holding rig {self.rig!r} (pid {self.pid} running {self.command!r})"

    def services(self) -> tuple[HeldService | None, dict[str, HeldService]]:
        """The holder's simbus broker (None: no emulated bus) and emulated adapters, for a joiner's
        :class:`hil.buses.RigBuses`."""
        broker = None if self.broker is None else HeldService(self, "the simbus broker", self.broker)
        return broker, {name: HeldService(self, f"the emulated adapter of bus {name!r}", info)
                        for name, info in self.adapters.items()}


class HeldService:
    """A held rig's broker or adapter as a joiner sees it: attached to, never started or stopped."""

    def __init__(self, held: Held, what: str, info: dict[str, Any]):
        self.held, self.what, self.info = held, what, info

    @property
    def alive(self) -> bool:
        return self.held.alive() and procfs.alive(self.info["pid"], self.held.starts.get(str(self.info["pid"])))

    def ended(self) -> str:
        return f"ended with {self.held.describe()}" if not self.held.alive() else "has died"


def descriptor_path(directory: Path, rig: str) -> Path:
    return Path(directory) / f"{rig}.session.json"


def publish(directory: Path, held: Held) -> Path:
    """Write ``held``'s descriptor (0600, whole or not at all) into the lease folder ``directory``."""
    path = descriptor_path(directory, held.rig)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)  # whatever the umask and the folder's default ACL
        json.dump(asdict(held), f, indent=2)
    os.replace(tmp, path)
    return path


def withdraw(directory: Path, held: Held) -> None:
    """Remove ``held``'s descriptor, if it is still the one there."""
    path = descriptor_path(directory, held.rig)
    if read(path) == held:
        path.unlink(missing_ok=True)


def find(directory: Path, rig: Rig) -> Held | None:
    """The session of this user holding ``rig`` that accepts joiners, or None (none, or its holder
    is gone). Raises UsageError when it holds the rig's buses described otherwise than ``rig`` does."""
    held = read(descriptor_path(directory, rig.name))
    if held is None or held.rig != rig.name or not held.alive():
        return None
    ours = bus_specs(rig)
    differ = sorted(n for n in set(held.buses) | set(ours) if held.buses.get(n) != ours.get(n))
    if differ:
        raise UsageError(f"{held.describe()} brought its buses up from another rig file: bus(es) "
                         f"{', '.join(map(repr, differ))} differ from this one; give the rig file it uses")
    return held


def read(path: Path) -> Held | None:
    """The descriptor at ``path`` if it is this user's own, private and well formed; else None."""
    try:
        with open_regular(path, LIMIT, "session descriptor") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
                return None
            data = json.loads(f.read())
        held = Held(**data)
    except (FileRefused, OSError, ValueError, TypeError):
        return None
    return held if held.format == FORMAT else None


def _start(pid: int) -> int:
    st = procfs.stat(pid)
    if st is None:
        raise UsageError(f"process {pid} of this rig ended before it could be published")
    return st.start


def bus_specs(rig: Rig) -> dict[str, Any]:
    """Each bus of ``rig`` as JSON, to compare a joiner's rig file with the holder's."""
    return {name: bus.model_dump(mode="json") for name, bus in rig.buses.items()}
