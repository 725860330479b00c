"""Memory-mapped peripherals: a block of 32-bit registers the core reads and writes.

The core routes every access inside a peripheral's block to it as an aligned word: ``read(offset)``
returns the register, ``write(offset, value, mask)`` gets the bytes written shifted into place and
``mask`` saying which (a byte store to a priority register touches one byte; a halfword store to a
USART's DR is a store of DR). Peripherals that act on the run clock say when they next need to
(``due``) and are called then (``service``); interrupt lines go to the NVIC through the machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hil.cortexm.core import Machine

WORD = 0xFFFF_FFFF


class Peripheral:
    size = 0x400

    def __init__(self, machine: Machine, base: int, name: str):
        self.machine = machine
        self.base = base
        self.name = name
        self.reset()

    def reset(self) -> None:
        """Registers to their reset values (power-on, system reset, watchdog)."""

    def read(self, offset: int) -> int:
        return 0

    def write(self, offset: int, value: int, mask: int) -> None:
        pass

    def due(self) -> int | None:
        """Run-clock time (ns) of this peripheral's next own event, None when it waits for nothing."""
        return None

    def service(self, now: int) -> None:
        """Act on what is due at ``now`` (counters wrapped, a character sent, ...)."""

    def retime(self, now: int) -> None:
        """The clock feeding this peripheral changed at ``now``; counters keep their value."""


def merge(old: int, value: int, mask: int) -> int:
    """A register after a store of ``value`` into the bytes of ``mask``."""
    return (old & ~mask | value & mask) & WORD


def w1c(old: int, value: int, bits: int) -> int:
    """Write-1-to-clear ``bits`` (status flags cleared by writing 1)."""
    return old & ~(value & bits)


def rc_w0(old: int, value: int, bits: int) -> int:
    """Clear-by-writing-0 ``bits`` (STM32 timer and USART status flags): writing 1 keeps a flag."""
    return old & (value | ~bits)
