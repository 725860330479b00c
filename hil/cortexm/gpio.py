"""GPIO ports A..E and AFIO: configuration and output registers as RM0008 §9 lays them out.

Pins are not wired to anything on an emulated rig: a pin reads back the level it drives (or its
pull, which the F1 also takes from ODR), so a firmware's pin set-up and LED toggles run as written.
"""

from __future__ import annotations

from hil.cortexm.mmio import Peripheral

CRL, CRH, IDR, ODR, BSRR, BRR, LCKR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18


class Gpio(Peripheral):
    def reset(self) -> None:
        self.crl = self.crh = 0x4444_4444  # floating inputs
        self.odr = 0
        self.lckr = 0

    def read(self, offset: int) -> int:
        return {CRL: self.crl, CRH: self.crh, IDR: self.odr, ODR: self.odr, LCKR: self.lckr}.get(offset, 0)

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset == CRL:
            self.crl = value
        elif offset == CRH:
            self.crh = value
        elif offset == ODR:
            self.odr = value & 0xFFFF
        elif offset == BSRR:
            self.odr = (self.odr | value & 0xFFFF) & ~(value >> 16)
        elif offset == BRR:
            self.odr &= ~value & 0xFFFF
        elif offset == LCKR:
            self.lckr = value & 0x1_FFFF


class Afio(Peripheral):
    """Remap and EXTI line selection registers, kept as written (remaps do not move anything here)."""

    def reset(self) -> None:
        self.regs = [0] * 8

    def read(self, offset: int) -> int:
        return self.regs[offset // 4] if offset < 0x20 else 0

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset < 0x20:
            self.regs[offset // 4] = value
