"""The target protocol: deploy, start, wait ready, stop, console — with a guarded life cycle.

Like labgrid's drivers, a target is an active object created from a passive spec. Its state moves
``idle → deployed → running → ready`` and back to ``stopped``; calling a step out of order raises
:class:`TargetStateError` naming the state, and a failed step latches ``broken`` until :meth:`stop`.
Subclasses implement the ``_hooks``; the public methods own the state machine.
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hil.errors import TargetStateError


class State(enum.Enum):
    IDLE = "idle"
    DEPLOYED = "deployed"
    RUNNING = "running"
    READY = "ready"
    STOPPED = "stopped"
    BROKEN = "broken"


@dataclass(frozen=True)
class ConsoleLine:
    """One line a target printed: run-clock time, component (or console bus) and the text."""

    t_ns: int
    source: str
    text: str
    stream: str = "stdout"


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
        if self.state in (State.IDLE, State.STOPPED):
            self.state = State.STOPPED if self.state is State.STOPPED else State.IDLE
            return
        try:
            self._stop()
        finally:
            self.state = State.STOPPED

    def console(self, line: ConsoleLine) -> None:
        """Drivers call this for every console line they capture."""
        self._on_console(line)

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
