"""The target protocol: deploy, start, wait ready, stop, console — with a guarded life cycle.

Like labgrid's drivers, a target is an active object created from a passive spec. Its state moves
``idle → deployed → running → ready`` and back to ``stopped``; calling a step out of order raises
:class:`TargetStateError` naming the state, and a failed step latches ``broken`` until :meth:`stop`.
Subclasses implement the ``_hooks``; the public methods own the state machine.

``deploy(components, bundle)`` takes the stack components mapped to this target as a mapping
``name → Component`` (see :func:`hil.targets.components_for`) and optionally a built bundle
(:mod:`hil.targets.bundle`). Every console line a driver captures goes through :meth:`Target.console`,
which keeps it in :attr:`Target.log` (for ready conditions and error tails) and passes it on.
Emulated power (:mod:`hil.targets.power`) calls :meth:`Target.power_off` / :meth:`Target.power_on`.
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hil.errors import DeployError, TargetStateError
from hil.targets.console import ConsoleLog, SerialConsole
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.buses import RigBuses


class State(enum.Enum):
    IDLE = "idle"
    DEPLOYED = "deployed"
    RUNNING = "running"
    READY = "ready"
    STOPPED = "stopped"
    BROKEN = "broken"


def _step(allowed: tuple[State, ...], then: State) -> Callable:
    """Guard a life-cycle step: check the state, run the hook, move on — or latch broken."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self: Target, *args: Any, **kwargs: Any) -> Any:
            if self.state not in allowed:
                want = " or ".join(s.value for s in allowed)
                raise TargetStateError(
                    f"target {self.name!r}: cannot {method.__name__} while {self.state.value}; "
                    f"expected {want}")
            try:
                result = method(self, *args, **kwargs)
            except BaseException:
                self.state = State.BROKEN
                raise
            self.state = then
            return result

        return guarded

    return wrap


class Target(ABC):
    """Base of every target driver. ``on_console`` receives every console line as it arrives."""

    def __init__(self, name: str, on_console: Callable[[ConsoleLine], None] | None = None):
        self.name = name
        self.state = State.IDLE
        self._on_console = on_console or (lambda line: None)
        self.log = ConsoleLog()
        self.serial_console: SerialConsole | None = None

    @_step((State.IDLE, State.STOPPED), State.DEPLOYED)
    def deploy(self, *args: Any, **kwargs: Any) -> None:
        """Put the stack's components for this target onto it (and verify them there)."""
        self._deploy(*args, **kwargs)

    @_step((State.DEPLOYED,), State.RUNNING)
    def start(self) -> None:
        """Start what was deployed."""
        self._start()

    @_step((State.RUNNING, State.READY), State.READY)
    def wait_ready(self, timeout_ns: int | None = None) -> None:
        """Block until every component's ready condition holds, or raise TargetTimeoutError."""
        self._wait_ready(timeout_ns)

    def stop(self) -> None:
        """Stop everything on the target; safe to call in any state, any number of times."""
        try:
            if self.state not in (State.IDLE, State.STOPPED):
                try:
                    self._stop()
                finally:
                    self.state = State.STOPPED
        finally:
            self.release_console()

    def capture_console(self, buses: RigBuses | None, bus: str) -> SerialConsole:
        """Start reading the serial console ``bus`` (host side) — call before any reset, flash or
        power step so its first line is not lost; call ``serial_console.step()`` right before it."""
        if self.serial_console is None:
            assert buses is not None, f"target {self.name!r} has a serial console: it is given the rig's buses"
            self.serial_console = SerialConsole(buses.open_serial(bus, side="host"), bus, self.console)
        return self.serial_console

    def release_console(self) -> None:
        if self.serial_console is not None:
            self.serial_console.close()
            self.serial_console = None

    def check_alive(self) -> None:
        """Raise DeployError naming a component that died since start, with its console tail."""
        if self.state in (State.RUNNING, State.READY):
            self._alive()

    def _alive(self) -> None:
        """Hook for :meth:`check_alive`; drivers with processes override it."""

    def console(self, line: ConsoleLine) -> None:
        """Drivers call this for every console line they capture."""
        self.log.add(line)
        self._on_console(line)

    def power_off(self) -> None:
        """Emulated power off: everything running on the target dies as if the supply were cut.

        A running target falls back to ``deployed`` (what was deployed stays); other states keep.
        """
        self._power_off()
        if self.state in (State.RUNNING, State.READY):
            self.state = State.DEPLOYED

    def power_on(self) -> None:
        """Emulated power on: a deployed target boots again (its components start; wait ready next)."""
        self._power_on()
        if self.state is State.DEPLOYED:
            self.state = State.RUNNING

    def _power_off(self) -> None:
        raise DeployError(f"target {self.name!r} ({type(self).__name__}) has no emulated power")

    def _power_on(self) -> None:
        raise DeployError(f"target {self.name!r} ({type(self).__name__}) has no emulated power")

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def _deploy(self, *args: Any, **kwargs: Any) -> None: ...

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _wait_ready(self, timeout_ns: int | None) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...
