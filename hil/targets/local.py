"""The local HPC target (the emulated HPC): components run as processes on this host.

Each run gets a sandbox folder ``RUN_DIR/targets/NAME``; the bundle is unpacked and verified there
and each component runs in ``files/COMPONENT`` as a real process under its leash
(:mod:`hil.lifecycle.leash`: the component and everything it starts end with the controller, or
with the leash). stdout and stderr are read line by line and stamped on the run clock. Stop sends
SIGTERM to every component (and all they started), then SIGKILL to what is left after the grace
period. Emulated power off kills them at once; power on starts them again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hil import clock
from hil.lifecycle.children import Child, spawn
from hil.spec.rig import HpcTarget, Rig
from hil.spec.stack import Component, ProcessComponent
from hil.targets import bundle as bundles
from hil.targets.base import Target
from hil.targets.hpc import checked_bundle, component_env, crashed, expand_argv
from hil.targets.ready import Armed
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.buses import RigBuses

DEFAULT_GRACE_NS = 5_000_000_000
_LINE_LIMIT = 1 << 16
DRAIN_S = 5.0  # how long a component's last output may take to be read once it ended


class LocalHpcTarget(Target):
    """Runs an HPC target's components as local processes in a per-run sandbox."""

    def __init__(self, name: str, spec: HpcTarget, *, rig: Rig | None = None, buses: RigBuses | None = None,
                 run_dir: Path, on_console: Callable[[ConsoleLine], None] | None = None,
                 grace_ns: int = DEFAULT_GRACE_NS):
        super().__init__(name, on_console)
        self.spec = spec
        self.rig = rig
        self.buses = buses
        self.sandbox = Path(run_dir).resolve() / "targets" / name  # its processes run in there
        self.grace_ns = grace_ns
        self.manifest: bundles.Manifest | None = None
        self._components: dict[str, ProcessComponent] = {}
        self._procs: dict[str, Child] = {}
        self._ready = Armed()

    # -- life cycle hooks ----------------------------------------------------------------------

    def _deploy(self, components: Mapping[str, Component], bundle: Path | None = None) -> None:
        if self.spec.console is not None:
            self.capture_console(self.buses, self.spec.console)
        self._components, archive, _ = checked_bundle(self.name, components, bundle,
                                                      self.sandbox.with_name(f"{self.name}.bundle.tar.gz"))
        shutil.rmtree(self.sandbox, ignore_errors=True)  # a redeploy starts from a clean sandbox
        self.manifest = bundles.unpack(archive, self.sandbox, self._components)

    def _start(self) -> None:
        self._ready = Armed(self._components, self.log, self.buses)
        for name, comp in self._components.items():
            self._spawn(name, comp)

    def _wait_ready(self, timeout_ns: int | None) -> None:
        self._ready.wait(self.name, self.log, self._alive, timeout_ns)

    def _stop(self) -> None:
        self._ready.close()
        self._terminate(self.grace_ns)

    def _power_off(self) -> None:
        self._terminate(0)

    def _power_on(self) -> None:
        if self._components and not self._procs and self.manifest is not None:
            self._start()

    # -- processes -----------------------------------------------------------------------------

    def _spawn(self, name: str, comp: ProcessComponent) -> None:
        cwd = self.sandbox / bundles.FILES / name
        cwd.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **component_env(self.name, self.spec, name, comp, self.buses)}
        child = spawn(expand_argv(comp.argv, sys.executable), what=f"component {name!r}", leash=True, cwd=cwd,
                      env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._procs[name] = child

        def reader(stream: str) -> Callable[[str], None]:
            return lambda text: self.console(ConsoleLine(clock.now_ns(), name, text, stream))

        child.read_lines({stream: reader(stream) for stream in ("stdout", "stderr")}, f"{self.name}-{name}",
                         _LINE_LIMIT)

    def pgids(self) -> dict[str, int]:
        """Process group of each running component (its leash's pid)."""
        return {name: c.pid for name, c in self._procs.items() if c.poll() is None}

    def _alive(self) -> None:
        """Raise DeployError naming the first component that died, with its console tail."""
        for name, child in self._procs.items():
            if child.poll() is not None:
                child.drain(DRAIN_S)
                raise crashed(self.name, name, child.ended(), self.log, self.state)

    def _terminate(self, grace_ns: int) -> None:
        """Stop every component at once (SIGTERM, or SIGKILL when ``grace_ns`` is 0); SIGKILL what
        outlives the grace."""
        procs, self._procs = self._procs, {}
        if grace_ns > 0:
            for child in reversed(list(procs.values())):
                child.terminate()
        deadline = time.monotonic() + grace_ns / 1e9
        for child in procs.values():
            child.stop(max(0.0, deadline - time.monotonic()))
        for child in procs.values():
            child.drain(DRAIN_S)
