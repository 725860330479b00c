"""Flashing clients, one per method of the rig's ``flash:`` section: ``stm32-uart`` (AN3155 over
pyserial, :mod:`hil.flash.stm32`), ``uds`` (udsoncan over ISO-TP, :mod:`hil.flash.uds`) and
``command`` (an external flasher, :mod:`hil.flash.command`). Each is a :class:`FlashMethod` in the
``hil.flash`` registry (:mod:`hil.registry`); a plugin adds one with an entry point.

Each reports progress through a :data:`FlashProgress` callback ``(step, done, total)`` and fails with
:class:`hil.errors.FlashError` naming the step and the response.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hil.buses import RigBuses
    from hil.firmware.image import Image, RawImage
    from hil.spec.rig import FlashSpec, Rig

FlashProgress = Callable[[str, int, int], None]


def no_progress(step: str, done: int, total: int) -> None:
    """The default :data:`FlashProgress` callback: ignore."""


@dataclass(frozen=True)
class FlashJob:
    """One flashing of one MCU: the rig target's name, its ``flash`` settings, the image (and the
    file it was written to), the rig and its open buses (:class:`hil.buses.RigBuses`: serial
    ports by ``serial_port(name, side="host")``, CAN by ``open_can(name)``), the target's folder
    (for logs), whether the MCU is emulated, and the progress callback."""

    target: str
    spec: FlashSpec
    image: Image | RawImage
    image_path: Path
    rig: Rig
    buses: RigBuses
    folder: Path
    emulated: bool
    progress: FlashProgress = no_progress


class FlashMethod(ABC):
    """A flash method (``hil.flash``). A plugin's carries its rig settings as ``model`` (a
    :class:`hil.spec.rig.FlashSpec` whose ``method`` is the entry point's name). ``boot0``: an
    emulated MCU comes up in its UART bootloader for it (else in its application, as for UDS)."""

    model: ClassVar[type]
    boot0: ClassVar[bool] = True

    def live(self, spec: FlashSpec) -> bool:
        """Whether flashing needs the MCU powered (its bootloader answering); else it runs with
        the MCU off (a debug probe writing the flash)."""
        return True

    @abstractmethod
    def flash(self, job: FlashJob) -> None:
        """Flash ``job.image``; FlashError naming the step and the response when it fails."""
