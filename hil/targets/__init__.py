"""Target drivers behind one small protocol (:class:`hil.targets.base.Target`).

:func:`create_target` picks the driver for a rig target through a lazy name → ``module:Class``
table (like python-can's interface table), extended by the ``hil.target`` entry-point group, so a
driver's heavy imports (asyncssh, udsoncan) happen only when a rig uses it. Every driver class is
built as ``cls(name, spec, rig=rig, buses=buses, run_dir=run_dir, on_console=on_console)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.errors import DeployError

if TYPE_CHECKING:
    from hil.spec.rig import HpcTarget, McuTarget, Rig
    from hil.spec.stack import Component, Stack
    from hil.targets.base import Target
    from hil.values import ConsoleLine

DRIVERS: dict[str, str] = {
    "hpc-local": "hil.targets.local:LocalHpcTarget",
    "hpc-ssh": "hil.targets.ssh:SshHpcTarget",
    "mcu-emulated": "hil.targets.mcu:EmulatedMcuTarget",
    "mcu-real": "hil.targets.mcu:RealMcuTarget",
}


def driver_key(spec: HpcTarget | McuTarget) -> str:
    """The driver table key for a target spec: hpc-local, hpc-ssh, mcu-emulated or mcu-real."""
    if spec.kind == "hpc":
        return "hpc-ssh" if spec.reach.via == "ssh" else "hpc-local"
    return "mcu-emulated" if spec.emulated else "mcu-real"


def driver_class(key: str) -> type[Target]:
    """Import the driver class for ``key`` from the built-in table or a ``hil.target`` entry point."""
    from importlib.metadata import entry_points

    where = DRIVERS.get(key)
    if where is None:
        eps = {ep.name: ep.value for ep in entry_points(group="hil.target")}
        where = eps.get(key)
    if where is None:
        known = ", ".join(sorted(DRIVERS))
        raise DeployError(f"no target driver {key!r}; known: {known}")
    module, attr = where.split(":")
    return getattr(importlib.import_module(module), attr)


def create_target(name: str, spec: HpcTarget | McuTarget, rig: Rig, buses: Any, run_dir: Path,
                  on_console: Callable[[ConsoleLine], None] | None = None) -> Target:
    """The driver for rig target ``name``; ``buses`` is the run's :class:`hil.buses.RigBuses`."""
    cls = driver_class(driver_key(spec))
    return cls(name, spec, rig=rig, buses=buses, run_dir=Path(run_dir), on_console=on_console)


def components_for(stack: Stack, target: str) -> dict[str, Component]:
    """The stack's components mapped to ``target``, by name, in stack order."""
    return {name: c for name, c in stack.components.items() if c.target == target}
