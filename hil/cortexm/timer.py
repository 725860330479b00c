"""A general-purpose timer (TIM2): an up-counter on the run clock with update and four
output-compare events and their interrupts (RM0008 §15).

The counter is computed from when it was last set, never incremented, so it is exact whatever the
host does; events are the run-clock times at which it wraps or meets a CCR. PSC takes effect at the
next update event (or UG), ARR at once unless ARPE preloads it, as on silicon. Counting down,
centre-aligned modes, input capture, PWM outputs, slave modes and DMA are not modelled.
"""

from __future__ import annotations

from hil.cortexm.mmio import Peripheral, rc_w0

CR1, CR2, SMCR, DIER, SR, EGR, CCMR1, CCMR2, CCER, CNT, PSC, ARR = range(0, 0x30, 4)
CCR = (0x34, 0x38, 0x3C, 0x40)
CEN, OPM, ARPE = 1, 1 << 3, 1 << 7
UIF = 1
NS = 1_000_000_000


class Timer(Peripheral):
    def __init__(self, machine, base: int, name: str, irq: int):
        self.irq = irq
        super().__init__(machine, base, name)

    def reset(self) -> None:
        self.cr1 = self.cr2 = self.smcr = self.dier = self.sr = 0
        self.ccmr1 = self.ccmr2 = self.ccer = 0
        self.psc = self.psc_active = 0
        self.arr = self.arr_active = 0xFFFF
        self.ccr = [0, 0, 0, 0]
        self.count = 0  # counter value at `anchor`
        self.anchor = 0  # run-clock ns
        self.done = 0  # ticks since anchor whose events have been raised
        self._next: int | None = None

    # -- the counter on the run clock ------------------------------------------------------------

    def _hz(self) -> int:
        return self.machine.rcc.timclk1 // (self.psc_active + 1)

    def _ticks(self, now: int) -> int:
        return (now - self.anchor) * self._hz() // NS

    def counter(self, now: int) -> int:
        if not self.cr1 & CEN:
            return self.count
        return (self.count + self._ticks(now)) % (self.arr_active + 1)

    def _restart(self, now: int, count: int | None = None) -> None:
        self.count = self.counter(now) if count is None else count
        self.anchor, self.done = now, 0
        self._plan()

    def _offsets(self) -> list[tuple[int, int]]:
        """(flag, tick of its first event after the anchor) for the update and each compare."""
        period = self.arr_active + 1
        events = [(UIF, period - self.count)]
        for i, ccr in enumerate(self.ccr):
            if ccr <= self.arr_active:
                events.append((1 << (i + 1), (ccr - self.count - 1) % period + 1))
        return events

    def _next_tick(self, first: int) -> int:
        """The first tick after those done at which an event with first tick ``first`` recurs."""
        period = self.arr_active + 1
        return first + max(0, -(-(self.done + 1 - first) // period)) * period

    def _plan(self) -> None:
        """The run-clock time of the next event after the ticks already done."""
        if not self.cr1 & CEN:
            self._next = None
            return
        tick = min(self._next_tick(first) for _, first in self._offsets())
        self._next = self.anchor + -(-tick * NS // self._hz())

    def due(self) -> int | None:
        return self._next

    def service(self, now: int) -> None:
        while self._next is not None and now >= self._next:
            ticks = self._ticks(now)
            period = self.arr_active + 1
            wrap = None
            for flag, first in self._offsets():
                if self._next_tick(first) <= ticks:
                    self.sr |= flag
                    if flag == UIF:  # the last wrap up to now (missed ones are one flag, as on silicon)
                        wrap = first + (ticks - first) // period * period
            if wrap is None:
                self.done = ticks
            else:  # update event at the wrap: preloads take effect; one-pulse mode stops
                at = self.anchor + wrap * NS // self._hz()
                if self.cr1 & OPM:
                    self.cr1 &= ~CEN
                self.psc_active, self.arr_active = self.psc, self.arr
                self.anchor, self.count, self.done = at, 0, 0
            self._plan()
        self._irq()

    def retime(self, now: int) -> None:
        if self.cr1 & CEN:
            self._restart(now)

    # -- registers -------------------------------------------------------------------------------

    def read(self, offset: int) -> int:
        self.service(self.machine.now())  # a wrap during this slice shows in CNT and UIF together
        if offset == CNT:
            return self.counter(self.machine.now())
        if offset in CCR:
            return self.ccr[CCR.index(offset)]
        return {CR1: self.cr1, CR2: self.cr2, SMCR: self.smcr, DIER: self.dier, SR: self.sr, CCMR1: self.ccmr1,
                CCMR2: self.ccmr2, CCER: self.ccer, PSC: self.psc, ARR: self.arr}.get(offset, 0)

    def write(self, offset: int, value: int, mask: int) -> None:
        now = self.machine.now()
        self.service(now)
        if offset == CR1:
            count = self.counter(now)
            self.cr1 = value & 0x3FF
            if value & 0x70:
                self.machine.diagnostic(f"{self.name.lower()}: down-counting and centre-aligned modes are not modelled")
            self._restart(now, count)
        elif offset == DIER:
            self.dier = value & 0x5F5F
        elif offset == SR:
            self.sr = rc_w0(self.sr, value, 0x1E5F)
        elif offset == EGR:
            if value & 1:  # UG: reinitialise the counter, load the preloads, update event
                self.psc_active, self.arr_active = self.psc, self.arr
                if not self.cr1 & 4:  # URS
                    self.sr |= UIF
                self._restart(now, 0)
            self.sr |= value & 0x1E  # CCxG
        elif offset == CNT:
            self._restart(now, value & 0xFFFF)
        elif offset == PSC:
            self.psc = value & 0xFFFF
        elif offset == ARR:
            self.arr = value & 0xFFFF
            if not self.cr1 & ARPE:
                count = self.counter(now)
                self.arr_active = self.arr
                self._restart(now, count % (self.arr_active + 1))
        elif offset in CCR:
            self.ccr[CCR.index(offset)] = value & 0xFFFF
            self._restart(now)
        elif offset in (CR2, SMCR, CCMR1, CCMR2, CCER):
            setattr(self, {CR2: "cr2", SMCR: "smcr", CCMR1: "ccmr1", CCMR2: "ccmr2", CCER: "ccer"}[offset], value)
        self._irq()

    def _irq(self) -> None:
        self.machine.irq(self.irq, bool(self.sr & self.dier & 0x1F))
