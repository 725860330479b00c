"""Flashing clients, one per method of the rig's ``flash:`` section: ``stm32-uart`` (AN3155 over
pyserial, :mod:`hil.flash.stm32`), ``uds`` (udsoncan over ISO-TP, :mod:`hil.flash.uds`) and
``command`` (an external flasher, :mod:`hil.flash.command`).

Each reports progress through a :data:`Progress` callback ``(step, done, total)`` and fails with
:class:`hil.errors.FlashError` naming the step and the response.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def no_progress(step: str, done: int, total: int) -> None:
    """The default :data:`Progress` callback: ignore."""
