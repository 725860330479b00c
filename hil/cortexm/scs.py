"""The Cortex-M3 System Control Space: NVIC, SCB, SysTick, and DWT's cycle counter.

The NVIC holds every exception's pending and active state and its priority, and answers the one
question the core asks between slices: which exception, if any, preempts what runs now. Priorities
follow ARMv7-M: 4 implemented bits (the STM32's), group priority by AIRCR.PRIGROUP, PRIMASK /
FAULTMASK / BASEPRI masking, ties broken by exception number. Interrupt lines are levels: a line
still high when its handler returns pends the interrupt again, as on the silicon.

SysTick counts down on the run clock at HCLK (or HCLK/8); its zero crossings are computed, not
counted, so a late host never bunches ticks: a missed period is one pending bit, as on silicon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hil.cortexm.mmio import Peripheral, merge

if TYPE_CHECKING:
    from hil.cortexm.core import Machine

NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT, SVCALL, DEBUGMON, PENDSV, SYSTICK = 2, 3, 4, 5, 6, 11, 12, 14, 15
EXTERNAL = 16  # exception number of IRQ 0
NAMES = {1: "Reset", NMI: "NMI", HARDFAULT: "HardFault", MEMMANAGE: "MemManage", BUSFAULT: "BusFault",
         USAGEFAULT: "UsageFault", SVCALL: "SVCall", DEBUGMON: "DebugMon", PENDSV: "PendSV", SYSTICK: "SysTick"}
THREAD = 256  # execution priority with nothing active and nothing masked
PRIO_MASK = 0xF0  # 4 implemented priority bits
CPUID = 0x412F_C231  # Cortex-M3 r2p1 (STM32F103)
SHCSR_ENABLE = {MEMMANAGE: 1 << 16, BUSFAULT: 1 << 17, USAGEFAULT: 1 << 18}
FIXED = {1: -3, NMI: -2, HARDFAULT: -1}

# SCS register offsets from 0xE000E000
ICTR, STCSR, STRVR, STCVR, STCALIB = 0x004, 0x010, 0x014, 0x018, 0x01C
ISER, ICER, ISPR, ICPR, IABR, IPR, STIR = 0x100, 0x180, 0x200, 0x280, 0x300, 0x400, 0xF00
CPUID_R, ICSR, VTOR, AIRCR, SCR, CCR = 0xD00, 0xD04, 0xD08, 0xD0C, 0xD10, 0xD14
SHPR1, SHCSR, CFSR, HFSR, DFSR, MMFAR, BFAR, AFSR, DEMCR = 0xD18, 0xD24, 0xD28, 0xD2C, 0xD30, 0xD34, 0xD38, 0xD3C, 0xDFC


def exception_name(exc: int) -> str:
    return NAMES.get(exc, f"IRQ {exc - EXTERNAL}" if exc >= EXTERNAL else f"exception {exc}")


class Nvic:
    """Exception state and priority arbitration (no registers: :class:`Scs` maps them)."""

    def __init__(self, irqs: int):
        self.count = EXTERNAL + irqs
        self.reset()

    def reset(self) -> None:
        self.priority = [0] * self.count
        for exc, prio in FIXED.items():
            self.priority[exc] = prio
        self.enabled = [False] * self.count
        for exc in (NMI, HARDFAULT, SVCALL, DEBUGMON, PENDSV, SYSTICK):
            self.enabled[exc] = True
        self.pending: set[int] = set()
        self.active: set[int] = set()
        self.lines: set[int] = set()  # exception numbers whose interrupt line is high
        self.prigroup = 0
        self.changed = False  # something that may make an exception takeable happened

    def group(self, priority: int) -> int:
        if priority < 0:
            return priority
        return priority >> (self.prigroup + 1) << (self.prigroup + 1)

    def pend(self, exc: int) -> None:
        self.pending.add(exc)
        self.changed = True

    def line(self, exc: int, high: bool) -> None:
        """An interrupt line's level: high pends it (and pends it again after its handler)."""
        if high:
            self.lines.add(exc)
            if exc not in self.pending:
                self.pend(exc)
        else:
            self.lines.discard(exc)

    def execution_priority(self, primask: int, faultmask: int, basepri: int, active: set[int] | None = None) -> int:
        prio = min((self.group(self.priority[e]) for e in (self.active if active is None else active)), default=THREAD)
        if basepri & PRIO_MASK:
            prio = min(prio, self.group(basepri & PRIO_MASK))
        if primask & 1:
            prio = min(prio, 0)
        if faultmask & 1:
            prio = min(prio, -1)
        return prio

    def highest_pending(self) -> int | None:
        ready = [e for e in self.pending if self.enabled[e]]
        return min(ready, key=lambda e: (self.priority[e], e)) if ready else None

    def preempting(self, primask: int, faultmask: int, basepri: int, active: set[int] | None = None) -> int | None:
        """The pending exception that preempts the execution priority given by the masks, or None."""
        exc = self.highest_pending()
        if exc is not None and self.group(self.priority[exc]) < self.execution_priority(primask, faultmask, basepri, active):
            return exc
        return None

    def activate(self, exc: int) -> None:
        self.pending.discard(exc)
        self.active.add(exc)

    def deactivate(self, exc: int) -> None:
        self.active.discard(exc)
        if exc in self.lines:  # the peripheral still asks: level-triggered
            self.pend(exc)


class Scs(Peripheral):
    """The private peripheral bus (0xE0000000..0xE00FFFFF): SCS registers, SysTick, DWT CYCCNT."""

    size = 0x10_0000

    def __init__(self, machine: Machine, base: int):
        self.nvic = Nvic(machine.part.irqs)
        super().__init__(machine, base, "SCS")

    def reset(self) -> None:
        self.nvic.reset()
        self.vtor = 0
        self.aircr = 0
        self.scr = 0
        self.ccr = 0x200  # STKALIGN
        self.shcsr = 0
        self.cfsr = self.hfsr = self.dfsr = self.mmfar = self.bfar = 0
        self.demcr = 0
        self.dwt_ctrl = 0
        self.cyc_base = 0
        self.cyc_since: int | None = None
        self.st_csr = self.st_rvr = 0
        self.st_anchor = 0  # run-clock ns when the counter held st_value
        self.st_value = 0
        self.st_zero: int | None = None  # run-clock ns of the next 1 → 0 step, None when stopped

    # -- SysTick ---------------------------------------------------------------------------------

    def _systick_hz(self) -> int:
        hclk = self.machine.rcc.hclk
        return hclk if self.st_csr & 4 else hclk // 8

    def _systick_now(self, now: int) -> int:
        if self.st_zero is None:
            return self.st_value
        ticks = (now - self.st_anchor) * self._systick_hz() // 1_000_000_000
        if ticks < self.st_value:
            return self.st_value - ticks
        period = self.st_rvr + 1
        return (self.st_rvr - (ticks - self.st_value - 1) % period) if self.st_rvr else 0

    def _systick_restart(self, now: int, value: int) -> None:
        """The counter holds ``value`` at ``now``; the next zero follows from it."""
        self.st_anchor, self.st_value = now, value
        if not self.st_csr & 1 or (value == 0 and self.st_rvr == 0):
            self.st_zero = None
            return
        self.st_zero = now + self._ticks_ns(value or self.st_rvr + 1)

    def _ticks_ns(self, ticks: int) -> int:
        hz = self._systick_hz()
        return -(-ticks * 1_000_000_000 // hz)

    def due(self) -> int | None:
        return self.st_zero

    def service(self, now: int) -> None:
        if self.st_zero is None or now < self.st_zero:
            return
        period = self.st_rvr + 1
        self.st_csr |= 1 << 16  # COUNTFLAG
        if self.st_csr & 2:
            self.nvic.pend(SYSTICK)
        if not self.st_rvr:
            self.st_zero = None
            self.st_value = 0
            return
        # the next zero after now (periods missed while the host was late are one pending bit)
        elapsed = (now - self.st_zero) * self._systick_hz() // 1_000_000_000
        skipped = elapsed // period
        self.st_anchor = self.st_zero + self._ticks_ns(skipped * period)
        self.st_value = period
        self.st_zero = self.st_anchor + self._ticks_ns(period)

    def retime(self, now: int) -> None:
        if self.st_zero is not None:
            self._systick_restart(now, self._systick_now(now))
        if self.cyc_since is not None:
            self.cyc_base, self.cyc_since = self._cyccnt(now), now

    def _cyccnt(self, now: int) -> int:
        if self.cyc_since is None:
            return self.cyc_base
        return (self.cyc_base + (now - self.cyc_since) * self.machine.rcc.hclk // 1_000_000_000) & 0xFFFF_FFFF

    # -- registers -------------------------------------------------------------------------------

    def read(self, offset: int) -> int:
        if offset < 0xE000:
            return self._read_dwt(offset)
        o = offset - 0xE000
        nvic = self.nvic
        if o == ICTR:
            return (nvic.count - EXTERNAL - 1) // 32
        if o == STCSR:
            self.service(self.machine.now())  # a zero crossing during this slice sets COUNTFLAG
            value = self.st_csr
            self.st_csr &= ~(1 << 16)
            return value
        if o == STRVR:
            return self.st_rvr
        if o == STCVR:
            return self._systick_now(self.machine.now())
        if o == STCALIB:
            return 9000  # 1 ms at HCLK/8 = 9 MHz (72 MHz HCLK), as ST programs it
        for base, attr in ((ISER, "enabled"), (ICER, "enabled"), (ISPR, "pending"), (ICPR, "pending"), (IABR, "active")):
            if base <= o < base + 0x20:
                return self._bits(attr, (o - base) * 8)
        if IPR <= o < IPR + 0xF0:
            e = EXTERNAL + (o - IPR)
            return sum((nvic.priority[e + i] if e + i < nvic.count else 0) << 8 * i for i in range(4))
        if o == CPUID_R:
            return CPUID
        if o == ICSR:
            return self._icsr()
        if o == VTOR:
            return self.vtor
        if o == AIRCR:
            return 0xFA05_0000 | nvic.prigroup << 8
        if o == SCR:
            return self.scr
        if o == CCR:
            return self.ccr
        if SHPR1 <= o < SHPR1 + 12:
            e = 4 + (o - SHPR1)
            return sum(nvic.priority[e + i] << 8 * i for i in range(4))
        if o == SHCSR:
            return self.shcsr | sum(1 << b for e, b in ((MEMMANAGE, 0), (BUSFAULT, 1), (USAGEFAULT, 3), (SVCALL, 7),
                                                           (DEBUGMON, 8), (PENDSV, 10), (SYSTICK, 11)) if e in nvic.active)
        return {CFSR: self.cfsr, HFSR: self.hfsr, DFSR: self.dfsr, MMFAR: self.mmfar, BFAR: self.bfar,
                AFSR: 0, DEMCR: self.demcr}.get(o, 0)

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset < 0xE000:
            self._write_dwt(offset, value)
            return
        o = offset - 0xE000
        nvic, now = self.nvic, self.machine.now()
        if o == STCSR:
            self.st_csr = self.st_csr & (1 << 16) | value & 7
            self._systick_restart(now, self._systick_now(now) if self.st_zero is not None else self.st_value)
        elif o == STRVR:
            self.st_rvr = value & 0xFF_FFFF
            if self.st_zero is not None:
                self._systick_restart(now, self._systick_now(now))
        elif o == STCVR:
            self.st_csr &= ~(1 << 16)
            self._systick_restart(now, 0)
        elif ISER <= o < ICER + 0x20 or ISPR <= o < ICPR + 0x20:
            self._write_bits(o, value)
        elif IPR <= o < IPR + 0xF0:
            self._priorities(EXTERNAL + (o - IPR), value, mask)
        elif o == ICSR:
            if value & 1 << 31:
                nvic.pend(NMI)
            if value & 1 << 28:
                nvic.pend(PENDSV)
            if value & 1 << 27:
                nvic.pending.discard(PENDSV)
            if value & 1 << 26:
                nvic.pend(SYSTICK)
            if value & 1 << 25:
                nvic.pending.discard(SYSTICK)
        elif o == VTOR:
            self.vtor = value & 0x3FFF_FF80
        elif o == AIRCR:
            if value >> 16 == 0x05FA:
                nvic.prigroup = value >> 8 & 7
                nvic.changed = True
                if value & 4:
                    self.machine.request_reset("system reset requested (AIRCR.SYSRESETREQ)")
        elif o == SCR:
            self.scr = value & 0x16
        elif o == CCR:
            self.ccr = value & 0x31B | 0x200
        elif SHPR1 <= o < SHPR1 + 12:
            self._priorities(4 + (o - SHPR1), value, mask)
        elif o == SHCSR:
            self.shcsr = value & 0x7_0000
            for exc, bit in SHCSR_ENABLE.items():
                nvic.enabled[exc] = bool(value & bit)
        elif o == CFSR:  # fault status: write 1 to clear
            self.cfsr &= ~value
        elif o == HFSR:
            self.hfsr &= ~value
        elif o == DFSR:
            self.dfsr &= ~value
        elif o == MMFAR:
            self.mmfar = value
        elif o == BFAR:
            self.bfar = value
        elif o == DEMCR:
            self.demcr = value
        elif o == STIR:
            if value & 0x1FF < nvic.count - EXTERNAL:
                nvic.pend(EXTERNAL + (value & 0x1FF))

    def _bits(self, attr: str, first_irq: int) -> int:
        table = getattr(self.nvic, attr)
        out = 0
        for i in range(32):
            e = EXTERNAL + first_irq + i
            if e < self.nvic.count and (table[e] if isinstance(table, list) else e in table):
                out |= 1 << i
        return out

    def _write_bits(self, o: int, value: int) -> None:
        nvic = self.nvic
        base = o & ~0x7F
        first = EXTERNAL + (o - base) * 8
        for i in range(32):
            e = first + i
            if not value >> i & 1 or e >= nvic.count:
                continue
            if base == ISER:
                nvic.enabled[e] = True
                nvic.changed = True
            elif base == ICER:
                nvic.enabled[e] = False
            elif base == ISPR:
                nvic.pend(e)
            else:
                nvic.pending.discard(e)

    def _priorities(self, first: int, value: int, mask: int) -> None:
        for i in range(4):
            if mask >> 8 * i & 0xFF and first + i < self.nvic.count and first + i not in FIXED:
                self.nvic.priority[first + i] = value >> 8 * i & PRIO_MASK
        self.nvic.changed = True

    def _icsr(self) -> int:
        nvic = self.nvic
        active = self.machine.ipsr()
        pending = nvic.highest_pending() or 0
        out = active | (pending & 0x1FF) << 12
        if any(e >= EXTERNAL for e in nvic.pending):
            out |= 1 << 22
        if len(nvic.active) <= 1:
            out |= 1 << 11  # RETTOBASE
        if PENDSV in nvic.pending:
            out |= 1 << 28
        if SYSTICK in nvic.pending:
            out |= 1 << 26
        if NMI in nvic.pending:
            out |= 1 << 31
        return out

    def _read_dwt(self, offset: int) -> int:
        if offset == 0x1000:
            return self.dwt_ctrl | 0x4000_0000  # NUMCOMP = 4
        if offset == 0x1004:
            return self._cyccnt(self.machine.now())
        return 0

    def _write_dwt(self, offset: int, value: int) -> None:
        now = self.machine.now()
        if offset == 0x1000:
            cycles = self._cyccnt(now)
            self.dwt_ctrl = value & 1
            self.cyc_base, self.cyc_since = cycles, (now if value & 1 else None)
        elif offset == 0x1004:
            self.cyc_base = merge(0, value, 0xFFFF_FFFF)
            self.cyc_since = now if self.dwt_ctrl & 1 else None
