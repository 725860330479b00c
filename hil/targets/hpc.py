"""What the local and the SSH HPC drivers share: which components they take, the environment a
component starts with, argv placeholders, and how a component's death is reported."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hil.errors import DeployError
from hil.lifecycle.children import exit_text
from hil.spec.rig import HpcTarget
from hil.spec.stack import Component, ProcessComponent
from hil.targets.base import State
from hil.targets.bundle import Manifest, build, read
from hil.targets.console import ConsoleLog, format_tail


def process_components(target: str, components: Mapping[str, Component]) -> dict[str, ProcessComponent]:
    """The components, all of which must be processes (an HPC runs no firmware image)."""
    out = {}
    for name, comp in dict(components).items():
        if not isinstance(comp, ProcessComponent):
            raise DeployError(f"target {target!r} is an HPC; component {name!r} is {comp.kind}, "
                              "expected a process")
        out[name] = comp
    return out


def checked_bundle(target: str, components: Mapping[str, Component], bundle: Path | None,
                   scratch: Path) -> tuple[dict[str, ProcessComponent], Path, Manifest]:
    """The process components, and the bundle holding them — built at ``scratch`` when none is
    given — read and checked: safe member names, every component present and mapped to ``target``."""
    procs = process_components(target, components)
    if bundle is None:
        bundle = scratch
        build(target, "unbundled", procs, bundle)
    manifest = read(Path(bundle))
    manifest.check_components(procs, target)
    return procs, Path(bundle), manifest


def component_env(target: str, spec: HpcTarget, name: str, comp: ProcessComponent,
                  buses: Any) -> dict[str, str]:
    """HIL_* variables for one component: how to reach each attached bus (``HIL_BUSES``, from
    :meth:`RigBuses.env`, the device side), its ``config`` (``HIL_CONFIG``, JSON), who it is; then
    the component's own ``env``."""
    env = {"HIL_TARGET": target, "HIL_COMPONENT": name, "HIL_CONFIG": json.dumps(comp.config),
           "PYTHONUNBUFFERED": "1"}
    if spec.buses:
        env.update(buses.env(list(spec.buses), side="device"))
    env.update(comp.env)
    return env


def expand_argv(argv: list[str], python: str) -> list[str]:
    """``{python}`` in argv is the Python that runs hil on that host (so components can use
    :func:`hil.buses.bus_from_env`)."""
    return [a.replace("{python}", python) for a in argv]


_WHEN = {State.READY: "while running", State.RUNNING: "during start-up"}


def crashed(target: str, name: str, how: int | str, log: ConsoleLog, state: State) -> DeployError:
    """The error for a component that died: how (a return code, or :meth:`Child.ended`'s words),
    when (by the target's state: deploying, starting, running), its console tail."""
    how = exit_text(how) if isinstance(how, int) else how
    return DeployError(f"target {target!r}: component {name!r} {how} {_WHEN.get(state, 'during deploy')}\n"
                       f"{format_tail(log.tail(name), name)}")
