"""Bring a broker up for a rig: the broker's config from the rig spec, and the broker child process.

:class:`BrokerProcess` is a context manager: it creates the private run folder (0700), starts
``python -m hil.simbus.broker``, waits for its ready line, and on exit stops it and checks that its
socket files are gone. The child watches its stdin, so it also ends if the controller dies.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from hil.clock import epoch_offset_ns
from hil.errors import BusError
from hil.lifecycle.children import python_argv, spawn
from hil.spec.rig import CanBus, Rig, SerialBus

READY_TIMEOUT_S = 60.0  # generous: the machine may be busy, and the child imports pydantic
STOP_TIMEOUT_S = 10.0


def broker_config(rig: Rig, folder: Path, seed: int = 0) -> dict[str, Any]:
    """What the broker serves for ``rig``: every emulated CAN bus and serial link, and the run's
    epoch offset (fixed here, at bring-up, for every process of the run)."""
    can, serial = [], []
    for name, bus in rig.buses.items():
        if not bus.emulated:
            continue
        if isinstance(bus, CanBus):
            can.append({"name": name, "bitrate": bus.bitrate, "data_bitrate": bus.data_bitrate, "fd": bus.fd,
                        "wire_model": bus.wire_model, "faults": [f.model_dump(mode="json") for f in bus.faults]})
        elif isinstance(bus, SerialBus):
            serial.append({"name": name, "baudrate": bus.baudrate, "pace": bus.pace})
    return {"dir": str(folder), "seed": seed, "can": can, "serial": serial, "epoch_offset_ns": epoch_offset_ns()}


def private_folder(folder: Path) -> Path:
    """Create ``folder`` (mode 0700, also when it already existed) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


class BrokerProcess:
    """The broker as a child process, for as long as the ``with`` block runs. ``module``, ``what``
    and ``name`` serve any hil service of the same shape (config file in, one ready line out,
    stdin watched): the emulated adapters (:mod:`hil.buses.adapters`) use them."""

    def __init__(self, config: dict[str, Any], module: str = "hil.simbus.broker", what: str = "the simbus broker",
                 name: str = "broker"):
        self.config = config
        self.folder = private_folder(Path(config["dir"]))
        self.module, self.what, self.name = module, what, name
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> BrokerProcess:
        path = self.folder / f"{self.name}.json"
        path.write_text(json.dumps(self.config))
        self._stderr = open(self.folder / f"{self.name}.log", "w+b")
        self.child = spawn(python_argv(self.module, str(path)), what=self.what,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self.proc = self.child.proc
        try:
            self.info = json.loads(self._ready_line())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _ready_line(self) -> str:
        proc = self.proc
        assert proc is not None and proc.stdout is not None  # started by __enter__, stdout a pipe
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                line = proc.stdout.readline()
                if line:
                    return line.decode()
            if proc.poll() is not None:
                self._stderr.seek(0)
                err = self._stderr.read().decode(errors="replace").strip()
                raise BusError(f"{self.what} exited with code {proc.returncode} before it was "
                               f"ready: {err.splitlines()[-1] if err else 'no error output'}")
        raise BusError(f"{self.what} did not report ready within {READY_TIMEOUT_S:.0f} s")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ended(self) -> str:
        """How the broker ended: ``exited with code 1``, ``was killed by SIGKILL``."""
        return self.child.ended()

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self.child.stop(STOP_TIMEOUT_S)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:  # both are pipes (__enter__)
                stream.close()
        self._stderr.close()
        for name in self.info.get("can", {}).values():
            Path(name).unlink(missing_ok=True)  # a killed broker could not clean up after itself
