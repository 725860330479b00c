"""Target drivers behind one small protocol (:class:`hil.targets.base.Target`).

:func:`create_target` picks the driver for a rig target from the ``hil.target`` registry
(:mod:`hil.registry`: a lazy name → ``module:Class`` table extended by entry points), so a driver's
heavy imports (asyncssh, udsoncan) happen only when a rig uses it. Every driver class is
built as ``cls(name, spec, rig=rig, buses=buses, run_dir=run_dir, on_console=on_console)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hil import registry

if TYPE_CHECKING:
    from hil.buses import RigBuses
    from hil.spec.rig import Rig, TargetSpec
    from hil.spec.stack import Component, Stack
    from hil.targets.base import Target
    from hil.values import ConsoleLine


def driver_key(spec: TargetSpec) -> str:
    """The ``hil.target`` entry that drives a rig target: hpc-local, hpc-ssh, mcu-emulated,
    mcu-real, or a plugin's name."""
    return spec.driver()


def driver_class(key: str) -> type[Target]:
    """The driver class of ``key``, built in or from a ``hil.target`` entry point."""
    return registry.TARGETS.implementation(key)


def create_target(name: str, spec: TargetSpec, rig: Rig, buses: RigBuses, run_dir: Path,
                  on_console: Callable[[ConsoleLine], None] | None = None) -> Target:
    """The driver for rig target ``name``; ``buses`` is the run's :class:`hil.buses.RigBuses`."""
    # every driver takes these (the hil.target contract); the Target base itself takes fewer
    cls: Callable[..., Target] = driver_class(driver_key(spec))
    return cls(name, spec, rig=rig, buses=buses, run_dir=Path(run_dir), on_console=on_console)


def components_for(stack: Stack, target: str) -> dict[str, Component]:
    """The stack's components mapped to ``target``, by name, in stack order."""
    return {name: c for name, c in stack.components.items() if c.target == target}
