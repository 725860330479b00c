"""Power switches: turn a target's supply off, on, or cycle it.

A ``command`` switch runs argv lists (no shell) with a timeout — a PDU's snmpset, a relay board's
CLI, a USB hub's uhubctl. An ``emulated`` switch feeds emulated targets: off kills what runs on
them (:meth:`Target.power_off`), on boots them again (:meth:`Target.power_on`). Each kind is a
:class:`Switch` in the ``hil.power`` registry (:mod:`hil.registry`); a plugin adds one with an
entry point. One rig switch may feed several targets; :func:`switches_for` builds each once.
"""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

from hil import registry
from hil.errors import DeployError
from hil.spec.common import format_duration
from hil.spec.rig import CommandPower, PowerSpec, Rig
from hil.targets.base import Target

_OUTPUT_TAIL = 400


class Switch(ABC):
    """One power switch of the rig (``hil.power``): its name, its rig settings and the targets it
    feeds, in rig order. A plugin's carries its settings' model as ``model`` (a
    :class:`hil.spec.rig.PowerSpec` whose ``kind`` is the entry point's name)."""

    model: ClassVar[type[PowerSpec]]

    def __init__(self, name: str, spec: PowerSpec, targets: Sequence[Target] = ()):
        self.name = name
        self.spec = spec
        self.targets = list(targets)

    @abstractmethod
    def on(self) -> None: ...

    @abstractmethod
    def off(self) -> None: ...

    def cycle(self) -> None:
        """Off, then on."""
        self.off()
        self.on()


class CommandSwitch(Switch):
    """Runs the spec's ``on`` / ``off`` / ``cycle`` argv; a non-zero exit or a timeout is an error."""

    spec: CommandPower

    def on(self) -> None:
        self._run("on", self.spec.on)

    def off(self) -> None:
        self._run("off", self.spec.off)

    def cycle(self) -> None:
        if self.spec.cycle is not None:
            self._run("cycle", self.spec.cycle)
            return
        self.off()
        time.sleep(self.spec.off_time / 1e9)
        self.on()

    def _run(self, step: str, argv: list[str]) -> None:
        where = f"power switch {self.name!r}: {step} command {argv}"
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.spec.timeout / 1e9, check=False)
        except subprocess.TimeoutExpired:
            raise DeployError(f"{where} did not finish within {format_duration(self.spec.timeout)}") from None
        except OSError as exc:
            raise DeployError(f"{where} could not run: {exc.strerror or exc}") from None
        if done.returncode != 0:
            out = (done.stderr or done.stdout).decode("utf-8", errors="replace").strip()[-_OUTPUT_TAIL:]
            raise DeployError(f"{where} exited with code {done.returncode}" + (f": {out}" if out else ""))


class EmulatedSwitch(Switch):
    """Feeds emulated targets: off cuts them (their processes die), on boots them again."""

    def on(self) -> None:
        for target in self.targets:
            target.power_on()

    def off(self) -> None:
        for target in reversed(self.targets):
            target.power_off()


def switches_for(rig: Rig, targets: Mapping[str, Target]) -> dict[str, Switch]:
    """Every rig switch that feeds one of ``targets`` (by rig target name), built once each."""
    out: dict[str, Switch] = {}
    for name, spec in rig.power.items():
        fed = [t for tname, t in targets.items() if rig.targets[tname].power == name]
        if not fed:
            continue
        out[name] = registry.POWER.implementation(spec.kind)(name, spec, fed)
    return out
