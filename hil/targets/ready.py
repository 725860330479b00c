"""Ready conditions: when is a started component ready for the bench?

A component is ready when a console line matches a regex, when a matching CAN frame (id or DBC
message, optionally a signal condition) appears on a rig bus, or when a TCP / Unix socket accepts.
Each condition is *armed* before its component starts (the console position is marked, the bus is
opened), so a line or frame sent at once on start-up is not missed. :func:`wait_ready` polls every
pending condition until all hold; a timeout names the component, the condition and quotes the last
console lines of that component. Used by the HPC targets and the MCU target alike. Each kind of
condition is a :class:`Check` in the ``hil.ready`` registry (:mod:`hil.registry`), told apart by
its key; a plugin adds one with an entry point.
"""

from __future__ import annotations

import re
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hil import cancel, registry
from hil.clock import now_ns
from hil.dbc import signal_holds
from hil.errors import DeployError, TargetTimeoutError
from hil.spec.common import format_duration
from hil.spec.stack import Component, ConsoleReady, FrameReady, Ready, ReadySpec, SocketReady
from hil.targets.console import ConsoleLog, format_tail

if TYPE_CHECKING:
    import can

    from hil.buses import RigBuses

POLL_S = 0.1


class Check(ABC):
    """One armed ready condition (``hil.ready``). A plugin's carries its stack settings as
    ``model`` (a :class:`hil.spec.stack.ReadySpec` with a field named as its entry point)."""

    model: ClassVar[type[ReadySpec]]

    def __init__(self, timeout_ns: int):
        self.timeout_ns = timeout_ns

    @classmethod
    def from_spec(cls, ready: Any, source: str, log: ConsoleLog, buses: RigBuses | None) -> Check:
        """The check for ``ready`` (a ``cls.model``, which each check names: hence ``Any`` here), on
        console lines of ``source`` in ``log`` or the rig's open ``buses``."""
        return cls(ready.timeout)

    def arm(self) -> None:
        """Prepare before the component starts (nothing to do by default)."""

    @abstractmethod
    def poll(self, timeout_s: float) -> bool:
        """True once the condition holds; waits at most ``timeout_s`` for it."""

    def close(self) -> None:
        """Release what :meth:`arm` took."""

    @abstractmethod
    def describe(self) -> str:
        """What is awaited, for messages: ``console line matching 'ready'``."""


class ConsoleCheck(Check):
    """A line of ``source`` printed after arming matches ``pattern``."""

    def __init__(self, pattern: str, source: str, log: ConsoleLog, timeout_ns: int):
        super().__init__(timeout_ns)
        self.pattern = re.compile(pattern)
        self.source = source
        self._log = log
        self._since = 0

    @classmethod
    def from_spec(cls, ready: ConsoleReady, source: str, log: ConsoleLog, buses: RigBuses | None) -> Check:
        return cls(ready.console, source, log, ready.timeout)

    def arm(self) -> None:
        self._since = self._log.mark(self.source)

    def poll(self, timeout_s: float) -> bool:
        return self._log.find(self.source, self.pattern, self._since, timeout_s) is not None

    def describe(self) -> str:
        return f"console line matching {self.pattern.pattern!r}"


class FrameCheck(Check):
    """A frame on ``match.bus`` with the id (or DBC message) and, if given, the signal condition."""

    def __init__(self, ready: FrameReady, buses: RigBuses | None):
        super().__init__(ready.timeout)
        self.match = ready.frame
        self._buses = buses
        self._bus: can.BusABC | None = None
        self._message = None
        m = self.match
        if m.message is not None or m.signal is not None:
            if ready.dbc is None:
                raise DeployError(f"frame ready condition on {m.bus!r} names a DBC message or signal "
                                  "but no 'dbc' file")
            from hil.dbc import load_dbc
            from hil.files import FileRefused

            try:
                db = load_dbc([ready.dbc])
            except FileRefused as exc:
                raise DeployError(str(exc)) from None
            try:
                if m.message is not None:
                    self._message = db.get_message_by_name(m.message)
                else:
                    assert m.id is not None  # FrameMatch.problems: a message or an id
                    self._message = db.get_message_by_frame_id(m.id)
            except KeyError:
                what = repr(m.message) if m.message is not None else f"with id {m.id:#x}"
                raise DeployError(f"DBC {ready.dbc} has no message {what}") from None
            if m.signal is not None and m.signal not in {s.name for s in self._message.signals}:
                raise DeployError(f"DBC message {self._message.name!r} has no signal {m.signal!r}")
        self.frame_id = self._message.frame_id if self._message is not None else m.id

    @classmethod
    def from_spec(cls, ready: FrameReady, source: str, log: ConsoleLog, buses: RigBuses | None) -> Check:
        return cls(ready, buses)

    def arm(self) -> None:
        if self._buses is None:
            raise DeployError(f"frame ready condition on bus {self.match.bus!r}, but no rig buses are up")
        self._bus = self._buses.open_can(self.match.bus)

    def poll(self, timeout_s: float) -> bool:
        assert self._bus is not None  # polled once armed
        end = time.monotonic() + timeout_s
        while True:
            msg = self._bus.recv(timeout=max(0.0, end - time.monotonic()))
            if msg is None:
                return False
            m = self.match
            if (msg.arbitration_id == self.frame_id and not msg.is_error_frame
                    and signal_holds(self._message, msg.data, m.signal, m.op, m.value)):
                return True

    def close(self) -> None:
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def describe(self) -> str:
        m = self.match
        what = f"frame {m.message}" if m.message else f"frame {m.id:#x}"
        cond = f" with {m.signal} {m.op} {m.value:g}" if m.op is not None else ""
        return f"{what}{cond} on bus {m.bus!r}"


class SocketCheck(Check):
    """``tcp://HOST:PORT`` or ``unix:PATH`` accepts a connection."""

    def __init__(self, address: str, timeout_ns: int):
        super().__init__(timeout_ns)
        self.address = address

    @classmethod
    def from_spec(cls, ready: SocketReady, source: str, log: ConsoleLog, buses: RigBuses | None) -> Check:
        return cls(ready.socket, ready.timeout)

    def poll(self, timeout_s: float) -> bool:
        where: str | tuple[str, int]
        if self.address.startswith("unix:"):
            family, where = socket.AF_UNIX, self.address.removeprefix("unix:")
        else:
            host, port = self.address.removeprefix("tcp://").rsplit(":", 1)
            family, where = socket.AF_INET, (host, int(port))
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(max(timeout_s, 0.01))
            try:
                s.connect(where)
                return True
            except OSError:
                time.sleep(timeout_s)
                return False

    def describe(self) -> str:
        return f"socket {self.address} accepting"


def make_check(ready: Ready, source: str, log: ConsoleLog, buses: RigBuses | None = None) -> Check:
    """The armed-able check for one component's ready condition (console lines of ``source``):
    the ``hil.ready`` entry whose key the condition has."""
    name = next(n for n in registry.READY.names() if n in type(ready).model_fields)
    return registry.READY.implementation(name).from_spec(ready, source, log, buses)


@dataclass
class _Pending:
    name: str
    check: Check
    deadline_ns: int


def wait_ready(target: str, checks: Mapping[str, Check], log: ConsoleLog,
               alive: Callable[[], None] = lambda: None, timeout_ns: int | None = None,
               console: str | None = None) -> None:
    """Poll ``checks`` (component name → check) until all hold.

    ``alive`` is called between polls and raises (DeployError) when a component died. Each check
    has its own timeout counted from now, capped by ``timeout_ns``; the first to run out raises
    :class:`TargetTimeoutError` with the console tail of ``console`` (an MCU's serial console),
    else of that component. Checks are closed either way.
    """
    start = now_ns()
    pending = [_Pending(name, c, start + min(c.timeout_ns, timeout_ns or c.timeout_ns))
               for name, c in checks.items()]
    try:
        while pending:
            cancel.check()
            alive()
            for p in list(pending):
                if p.check.poll(POLL_S / len(pending)):
                    pending.remove(p)
                elif now_ns() >= p.deadline_ns:
                    waited = format_duration(p.deadline_ns - start)
                    raise TargetTimeoutError(
                        f"target {target!r}: component {p.name!r} not ready after {waited}: "
                        f"expected {p.check.describe()}, none came\n"
                        f"{format_tail(log.tail(console or p.name), console or p.name)}")
        alive()
    finally:
        for c in checks.values():
            c.close()



class Armed:
    """The armed ready conditions of one target's components, from arming to waiting (or stop)."""

    def __init__(self, components: Mapping[str, Component] | None = None, log: ConsoleLog | None = None,
                 buses: RigBuses | None = None):
        self.checks: dict[str, Check] = {}
        if components:
            assert log is not None  # components come with their target's console log
            self.checks = {name: make_check(c.ready, name, log, buses)
                           for name, c in components.items() if c.ready is not None}
        for check in self.checks.values():
            check.arm()

    def wait(self, target: str, log: ConsoleLog, alive: Callable[[], None], timeout_ns: int | None) -> None:
        checks, self.checks = self.checks, {}
        wait_ready(target, checks, log, alive, timeout_ns)

    def close(self) -> None:
        for check in self.checks.values():
            check.close()
        self.checks = {}
