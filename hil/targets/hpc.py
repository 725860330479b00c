"""What the local and the SSH HPC drivers share: which components they take, the environment a
component starts with, argv placeholders, and how a component's death is reported.

Environment and argv come from the stack and are passed on exactly, never interpreted: a variable
name must be a name (``[A-Za-z_][A-Za-z0-9_]*``: a name with ``=`` or ``;`` would be two variables
or a command in a shell), and no name, value or argument may hold a NUL byte (an exec() argument
ends at the first one). Both are refused before anything is deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hil.errors import DeployError
from hil.lifecycle.children import exit_text
from hil.spec.rig import HpcTarget
from hil.spec.stack import Component, ProcessComponent
from hil.targets.base import State
from hil.targets.bundle import Manifest, build, read
from hil.targets.console import ConsoleLog, format_tail

if TYPE_CHECKING:
    from hil.buses import RigBuses

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    for name, comp in procs.items():
        check_env(target, name, comp.env)
        check_argv(target, name, comp.argv)
    if bundle is None:
        bundle = scratch
        build(target, "unbundled", procs, bundle)
    manifest = read(Path(bundle))
    manifest.check_components(procs, target)
    return procs, Path(bundle), manifest


def component_env(target: str, spec: HpcTarget, name: str, comp: ProcessComponent,
                  buses: RigBuses | None) -> dict[str, str]:
    """HIL_* variables for one component: how to reach each attached bus (``HIL_BUSES``, from
    :meth:`RigBuses.env`, the device side) and network (``HIL_NETS``, :func:`hil.net.env`), its ``config`` (``HIL_CONFIG``, JSON), who it is; then
    the component's own ``env``."""
    env = {"HIL_TARGET": target, "HIL_COMPONENT": name, "HIL_CONFIG": json.dumps(comp.config),
           "PYTHONUNBUFFERED": "1"}
    if spec.buses or spec.networks:
        assert buses is not None, f"target {target!r} is on buses or networks: it is given the rig's"
        if spec.buses:
            env.update(buses.env(list(spec.buses), side="device"))
        if spec.networks:
            from hil import net

            env.update(net.env(buses.rig, target))
    env.update(comp.env)
    check_env(target, name, env)
    return env


def expand_argv(argv: list[str], python: str) -> list[str]:
    """``{python}`` in argv is the Python that runs hil on that host (so components can use
    :func:`hil.buses.bus_from_env`)."""
    return [a.replace("{python}", python) for a in argv]


def check_env(target: str, component: str, env: Mapping[str, str]) -> None:
    """DeployError unless every name is a plain variable name and nothing holds a NUL byte."""
    for key, value in env.items():
        if not ENV_NAME.fullmatch(key):
            raise DeployError(f"target {target!r}: component {component!r}: environment variable name {key!r} "
                              "is not a name (letters, digits and _, not starting with a digit); refused")
        if "\0" in value:
            raise DeployError(f"target {target!r}: component {component!r}: environment variable {key} holds "
                              "a NUL byte, which no process environment can carry; refused")


def check_argv(target: str, component: str, argv: list[str]) -> None:
    """DeployError if an argument holds a NUL byte (it would silently end there)."""
    for i, arg in enumerate(argv):
        if "\0" in arg:
            raise DeployError(f"target {target!r}: component {component!r}: argv[{i}] holds a NUL byte, which no "
                              "program argument can carry; refused")


_WHEN = {State.READY: "while running", State.RUNNING: "during start-up"}


def crashed(target: str, name: str, how: int | str, log: ConsoleLog, state: State) -> DeployError:
    """The error for a component that died: how (a return code, or :meth:`Child.ended`'s words),
    when (by the target's state: deploying, starting, running), its console tail."""
    how = exit_text(how) if isinstance(how, int) else how
    return DeployError(f"target {target!r}: component {name!r} {how} {_WHEN.get(state, 'during deploy')}\n"
                       f"{format_tail(log.tail(name), name)}")
