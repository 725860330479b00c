"""The lab-host side: one Dask worker that owns some rigs and runs benches on them.

Each rig the worker owns becomes a Dask resource ``rig-NAME`` of capacity 1, so the scheduler sends
a bench only to the host that owns its rig and never two at once. What tasks need to know on the
worker — which rig file a rig name means, where run folders go, how long to wait for a local lease —
lives in the :class:`LabHost` worker plugin, which tasks read with :func:`lab_host`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import Worker, WorkerPlugin, get_worker

from hil.cluster.tasks import cancel_running
from hil.errors import ClusterError, UsageError
from hil.lifecycle import signals

PLUGIN_NAME = "hil-lab-host"

log = logging.getLogger(__name__)


def resource_name(rig: str) -> str:
    """The Dask resource that stands for one rig."""
    return f"rig-{rig}"


@dataclass
class LabHost(WorkerPlugin):
    """What one worker owns: rig name → rig file, the folder run folders go into, the lease wait."""

    rigs: dict[str, Path]
    runs: Path
    root: Path
    lease_wait: float | None = None
    host: str = field(default_factory=socket.gethostname)

    name = PLUGIN_NAME

    def rig_path(self, rig: str) -> Path:
        try:
            return self.rigs[rig]
        except KeyError:
            raise UsageError(f"worker on {self.host} does not own rig {rig!r}; it owns: "
                             f"{', '.join(sorted(self.rigs)) or 'none'}") from None

    def suite_path(self, suite: str) -> Path:
        """A suite path as sent by the submitter: relative ones resolve against this host's root."""
        path = Path(suite)
        return path if path.is_absolute() else self.root / path


def lab_host() -> LabHost:
    """The LabHost of the worker this task runs on."""
    host = get_worker().plugins[PLUGIN_NAME]
    assert isinstance(host, LabHost)  # serve() plugs the LabHost in under this name
    return host


def load_rigs(paths: list[str | Path]) -> dict[str, Path]:
    """Rig files → {name: path}; each is loaded and checked, and two files may not share a name."""
    from hil.spec import load_rig

    rigs: dict[str, Path] = {}
    for p in paths:
        spec = load_rig(p)
        name = spec.model.name
        if name in rigs:
            raise UsageError(f"rig {name!r} is given twice: {rigs[name]} and {p}")
        rigs[name] = Path(p).resolve()
    return rigs


async def serve(scheduler: str, host: LabHost, *, name: str | None = None, listen: str | None = None,
                security: Any = None, connect_timeout: float = 60, on_ready=None) -> None:
    """Run the worker until the scheduler goes away or a stop signal arrives (the entry point's
    policy, :func:`hil.lifecycle.signals.stopping`: the benches it runs are cancelled and torn
    down first); a scheduler not reached within ``connect_timeout`` seconds is a ClusterError."""
    resources: dict[str, float] = {resource_name(r): 1 for r in host.rigs}
    # a thread per rig, so every rig can run a bench at once, plus one for small tasks (rig files,
    # artifacts) that must not queue behind a bench
    worker = Worker(scheduler, nthreads=len(host.rigs) + 1, name=name or f"{host.host}/{'+'.join(host.rigs)}",
                    resources=resources, plugins=(host,), security=security, host=listen, dashboard=False,
                    local_directory=str(host.runs / ".dask-worker"), death_timeout=connect_timeout,
                    memory_limit=0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop() -> None:
        loop.call_soon_threadsafe(stop.set)

    with signals.stopping(on_stop):
        try:
            await worker
        except OSError as exc:  # TimeoutError included
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout:g} s: "
                               f"{exc}") from None
        async with worker:
            log.info("worker %s at %s owns %s", worker.name, worker.address, ", ".join(resources))
            if on_ready is not None:
                on_ready(worker)
            finished = asyncio.ensure_future(worker.finished())
            await asyncio.wait([finished, asyncio.ensure_future(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set() and (n := cancel_running()):  # torn down now, not after their last minute
                log.info("stopping: cancelled %d running bench(es); their rigs are torn down first", n)
