"""The independent watchdog (IWDG, RM0008 §19): once started it cannot be stopped; a firmware
that does not reload it within (RLR + 1) × prescaler LSI periods resets the MCU.

It counts the time the core had, not the host's: a slice the host ran late counts only as the
core time it executed (see :meth:`hil.cortexm.core.Machine.core_now`), so a busy CI box does not
bite a healthy firmware, while one that stops reloading is reset.
"""

from __future__ import annotations

from hil.cortexm.mmio import Peripheral

KR, PR, RLR, SR = 0x00, 0x04, 0x08, 0x0C
START, RELOAD, UNLOCK = 0xCCCC, 0xAAAA, 0x5555


class Iwdg(Peripheral):
    def reset(self) -> None:
        self.running = False
        self.unlocked = False
        self.pr = 0
        self.rlr = 0xFFF
        self.expires: int | None = None  # core time (ns) of the reset

    def _timeout_ns(self) -> int:
        divider = 4 << min(self.pr, 6)
        return (self.rlr + 1) * divider * 1_000_000_000 // self.machine.part.lsi_hz

    def read(self, offset: int) -> int:
        return {PR: self.pr, RLR: self.rlr}.get(offset, 0)

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset == KR:
            value &= 0xFFFF
            self.unlocked = value == UNLOCK
            if value == START:
                self.running = True
            if value in (START, RELOAD) and self.running:
                self.expires = self.machine.core_now() + self._timeout_ns()
        elif offset == PR and self.unlocked:
            self.pr = value & 7
        elif offset == RLR and self.unlocked:
            self.rlr = value & 0xFFF

    def due(self) -> int | None:
        """On the run clock: when the core will have had the time left (if the host keeps up)."""
        return None if self.expires is None else self.expires + self.machine.stolen_ns

    def service(self, now: int) -> None:
        if self.expires is not None and now - self.machine.stolen_ns >= self.expires:
            self.expires = None
            self.machine.request_reset("independent watchdog (IWDG) expired", watchdog=True)
