"""Bring a stack up on a rig's targets, keep an eye on it, and always tear it down.

The engine behind every deploy (the deploy step of :class:`hil.session.RigSession`): one bundle
for the whole stack (built, or a prebuilt one checked against the stack), one driver per target
that has components, serial consoles captured before anything else happens, an optional power
cycle, then deploy → start → wait ready target by target. Every step is reported as an
:class:`DeployStep`; leaving the ``with`` block stops every target in reverse order, also after errors
and Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hil.clock import now_ns
from hil.spec.rig import Rig
from hil.spec.stack import Stack
from hil.targets import bundle as bundles
from hil.targets import components_for, create_target, driver_key
from hil.targets.base import Target
from hil.targets.power import switches_for
from hil.targets.ready import make_check
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.buses import RigBuses


@dataclass(frozen=True)
class DeployStep:
    """A target moved on: ``phase`` is deploying / deployed / starting / waiting / ready / stopping /
    stopped / failed; ``detail`` says more (what is awaited, how long it took, the error)."""

    target: str
    phase: str
    detail: str = ""


class Deployment:
    """The stack's targets on one rig, for the length of a ``with`` block."""

    def __init__(self, rig: Rig, stack: Stack, buses: RigBuses, run_dir: Path, *, bundle: Path | None = None,
                 on_event: Callable[[DeployStep], None] = lambda e: None,
                 on_console: Callable[[ConsoleLine], None] | None = None):
        self.rig, self.stack, self.buses = rig, stack, buses
        self.run_dir = Path(run_dir)
        self.bundle = bundle
        self._emit = on_event
        self._on_console = on_console
        self.targets: dict[str, Target] = {}
        self.power_cycled: list[str] = []  # the targets whose power switch was cycled before deploying

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Stop every target, in reverse order, even when one of them fails to stop."""
        failed: list[Exception] = []
        for name, target in reversed(list(self.targets.items())):
            self._emit(DeployStep(name, "stopping"))
            try:
                target.stop()
            except Exception as err:  # the others must still be stopped
                failed.append(err)
                self._emit(DeployStep(name, "failed", first_line(err)))
                continue
            self._emit(DeployStep(name, "stopped"))
        if failed and exc_type is None:
            raise failed[0]

    def drivers(self) -> dict[str, str]:
        """Target name → driver key for every target the stack uses, in rig order."""
        return drivers(self.rig, self.stack)

    def up(self, power_cycle: bool = False, timeout_ns: int | None = None) -> None:
        """Create, (power-cycle,) deploy, start and wait ready every target the stack uses."""
        archive = self._bundle()
        for name in self.drivers():
            spec = self.rig.targets[name]
            self.targets[name] = target = create_target(name, spec, self.rig, self.buses, self.run_dir,
                                                        self._on_console)
            if spec.console is not None:
                target.capture_console(self.buses, spec.console)
        if power_cycle:
            self._power_cycle()
        for name, target in self.targets.items():
            self._step(name, "deploying", "deployed", lambda: target.deploy(  # called within _step
                components_for(self.stack, name), archive))
        for name, target in self.targets.items():
            self._step(name, "starting", "started", target.start)
        for name, target in self.targets.items():
            awaited = [f"{c}: {make_check(comp.ready, c, target.log, self.buses).describe()}"
                       for c, comp in components_for(self.stack, name).items() if comp.ready is not None]
            self._step(name, "waiting", "ready", lambda: target.wait_ready(timeout_ns),  # called within _step
                       "; ".join(awaited) or "no ready condition")

    def check_alive(self) -> None:
        """Raise DeployError if a component on any target died."""
        for target in self.targets.values():
            target.check_alive()

    def _bundle(self) -> Path:
        if self.bundle is None:
            out = bundles.bundle_path(self.run_dir, self.stack)
            bundles.build_stack(self.stack, out)
            return out
        bundles.read(self.bundle).check_stack(self.stack)
        return self.bundle

    def _power_cycle(self) -> None:
        stale = {name: t.serial_console.step() for name, t in self.targets.items() if t.serial_console is not None}
        for name, switch in switches_for(self.rig, self.targets).items():
            fed = [t for t, spec in self.rig.targets.items() if spec.power == name and t in self.targets]
            for target in fed:
                dropped = f"; {stale[target]} stale console byte(s) dropped" if stale.get(target) else ""
                self._emit(DeployStep(target, "power-cycle", f"switch {name}{dropped}"))
            switch.cycle()
            self.power_cycled += fed

    def _step(self, name: str, doing: str, done: str, action: Callable[[], None], detail: str = "") -> None:
        self._emit(DeployStep(name, doing, detail))
        t0 = now_ns()
        try:
            action()
        except BaseException as exc:
            self._emit(DeployStep(name, "failed", first_line(exc)))
            raise
        self._emit(DeployStep(name, done, f"{(now_ns() - t0) / 1e9:.1f}s"))


def drivers(rig: Rig, stack: Stack) -> dict[str, str]:
    """Target name → driver key for every target of ``rig`` that ``stack`` uses, in rig order."""
    used = {c.target for c in stack.components.values()}
    return {n: driver_key(t) for n, t in rig.targets.items() if n in used}


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
