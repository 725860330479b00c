"""Reset and clock control, and the flash interface: the clock tree and in-application programming.

RCC: HSI (8 MHz) at reset; HSE, the PLL (HSI/2 or HSE, ×2..×16), SYSCLK switching and the AHB/APB
prescalers as RM0008 lays them out. Oscillators and the PLL lock at once (RDY follows ON). Every
peripheral's clock-enable bit is kept, and the core refuses accesses to an unclocked peripheral
the way the silicon ignores them. A change of HCLK or PCLK retimes everything counting on them.

FLASH: wait states (``LATENCY``, checked against SYSCLK: a setting the silicon cannot run is
reported on the console), the key sequence and lock, half-word programming (``PG``; only erased
half-words take a value other than 0, else PGERR), page and mass erase (``PER``/``MER`` +
``STRT``), write protection from the option bytes. Programming and erasing are instantaneous.
"""

from __future__ import annotations

from hil.cortexm.mmio import Peripheral, w1c

CR, CFGR, CIR, APB2RSTR, APB1RSTR, AHBENR, APB2ENR, APB1ENR, BDCR, CSR = range(0, 0x28, 4)
AHB_DIV = {8: 2, 9: 4, 10: 8, 11: 16, 12: 64, 13: 128, 14: 256, 15: 512}
APB_DIV = {4: 2, 5: 4, 6: 8, 7: 16}
RESET_FLAGS = 0xFE00_0000  # CSR: the reset cause flags (cleared by RMVF)
PIN_RESET, POWER_ON_RESET, SOFTWARE_RESET, IWDG_RESET = 1 << 26, 1 << 27, 1 << 28, 1 << 29
KEY1, KEY2 = 0x4567_0123, 0xCDEF_89AB
ACR, KEYR, OPTKEYR, SR, FCR, AR, OBR, WRPR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x1C, 0x20
BSY, PGERR, WRPRTERR, EOP = 1, 4, 16, 32
PG, PER, MER, STRT, LOCK = 1, 2, 4, 64, 128


class Rcc(Peripheral):
    def __init__(self, machine, base: int):
        self.csr = POWER_ON_RESET | PIN_RESET  # survives system resets: set once at power-on
        super().__init__(machine, base, "RCC")

    def reset(self) -> None:
        self.cr = 0x83
        self.cfgr = 0
        self.enr = {AHBENR: 0x14, APB2ENR: 0, APB1ENR: 0}
        self.csr = self.csr & RESET_FLAGS  # LSI off; the flags stay until RMVF
        self._clocks()

    def reset_cause(self, flag: int) -> None:
        self.csr |= flag

    @property
    def sysclk(self) -> int:
        sws = self.cfgr >> 2 & 3
        part = self.machine.part
        if sws == 1:
            return part.hse_hz
        if sws == 2:
            source = (part.hse_hz // (2 if self.cfgr & 1 << 17 else 1)) if self.cfgr & 1 << 16 else part.hsi_hz // 2
            return source * min((self.cfgr >> 18 & 15) + 2, 16)
        return part.hsi_hz

    def _clocks(self) -> None:
        self.hclk = self.sysclk // AHB_DIV.get(self.cfgr >> 4 & 15, 1)
        ppre1, ppre2 = self.cfgr >> 8 & 7, self.cfgr >> 11 & 7
        self.pclk1 = self.hclk // APB_DIV.get(ppre1, 1)
        self.pclk2 = self.hclk // APB_DIV.get(ppre2, 1)
        self.timclk1 = self.pclk1 * (1 if ppre1 < 4 else 2)  # TIM2..7 run at 2 × PCLK1 when divided

    def clocked(self, register: int, bit: int) -> bool:
        return bool(self.enr[register] >> bit & 1)

    def read(self, offset: int) -> int:
        if offset == CR:
            return self.cr
        if offset == CFGR:
            return self.cfgr
        if offset in self.enr:
            return self.enr[offset]
        if offset == CSR:
            return self.csr
        return 0

    def write(self, offset: int, value: int, mask: int) -> None:
        before = (self.hclk, self.pclk1, self.pclk2)
        if offset == CR:
            on = value & (1 | 1 << 16 | 1 << 24)  # HSION, HSEON, PLLON: ready at once
            self.cr = value & 0x010D_FFF9 | on << 1
        elif offset == CFGR:
            sw = value & 3
            ready = {0: self.cr & 2, 1: self.cr & 1 << 17, 2: self.cr & 1 << 25}.get(sw, 0)
            sws = sw if ready else self.cfgr >> 2 & 3
            self.cfgr = value & 0x07FF_FFF3 | sws << 2
        elif offset in self.enr:
            self.enr[offset] = value
        elif offset == CSR:
            self.csr = (self.csr & ~1 | value & 1 | (value & 1) << 1) & ~(RESET_FLAGS if value & 1 << 24 else 0)
        self._clocks()
        if (self.hclk, self.pclk1, self.pclk2) != before:
            self.machine.clocks_changed()


class FlashInterface(Peripheral):
    """The embedded flash's controller (RM0008 §3 and PM0075)."""

    def reset(self) -> None:
        self.acr = 0x30
        self.sr = 0
        self.cr = LOCK
        self.ar = 0
        self.keys = 0  # how much of the unlock sequence has been written
        self.warned = False

    @property
    def programming(self) -> bool:
        return bool(self.cr & PG)

    def read(self, offset: int) -> int:
        options = self.machine.flash.options
        return {ACR: self.acr, SR: self.sr, FCR: self.cr, AR: self.ar,
                OBR: 0x03FF_FFFC | (2 if options.read_protected else 0),
                WRPR: ~sum(1 << min(p // 2, 31) for p in options.write_protected) & 0xFFFF_FFFF}.get(offset, 0)

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset == ACR:
            self.acr = value & 0x1F | (0x20 if value & 0x10 else 0)
            self.check_wait_states()
        elif offset == KEYR:
            if self.keys == 0 and value == KEY1:
                self.keys = 1
            elif self.keys == 1 and value == KEY2:
                self.keys = 0
                self.cr &= ~LOCK
            else:
                self.keys = 0
                self.cr |= LOCK
        elif offset == SR:
            self.sr = w1c(self.sr, value, PGERR | WRPRTERR | EOP)
        elif offset == FCR:
            if self.cr & LOCK:
                self.cr |= value & LOCK  # only LOCK can be written while locked
                return
            self.cr = value & 0x16F7
            if value & STRT:
                self._erase()
        elif offset == AR:
            self.ar = value

    def check_wait_states(self) -> None:
        """Report once a SYSCLK the configured wait states cannot feed (RM0008 §3.3.3)."""
        sysclk = self.machine.rcc.sysclk
        needed = 0 if sysclk <= 24_000_000 else 1 if sysclk <= 48_000_000 else 2
        if (self.acr & 7) < needed and not self.warned:
            self.warned = True
            self.machine.diagnostic(f"flash: SYSCLK {sysclk / 1e6:g} MHz needs {needed} wait state(s), "
                                    f"FLASH_ACR.LATENCY is {self.acr & 7}: the silicon would fetch garbage")

    def program(self, address: int, size: int, value: int) -> None:
        """A store into flash while PG is set: one half-word (a word store programs two)."""
        data = value.to_bytes(size, "little")
        for off in range(0, size, 2):
            self._program_half(address + off, data[off:off + 2])
        self.sr |= EOP

    def _program_half(self, address: int, half: bytes) -> None:
        flash = self.machine.flash
        old = flash.read(address & ~1, 2)
        if old != b"\xff\xff" and half != b"\0\0":
            self.sr |= PGERR
            return
        try:
            flash.program(address & ~1, half)
        except ValueError:  # a write-protected page
            self.sr |= WRPRTERR
            return
        self.machine.flash_changed(address & ~1, 2)

    def _erase(self) -> None:
        flash = self.machine.flash
        device = flash.device
        try:
            if self.cr & MER:
                flash.mass_erase()
                self.machine.flash_changed(device.flash_start, device.flash_size)
            elif self.cr & PER and flash.contains(self.ar):
                page = device.page_of(self.ar)
                flash.erase_pages([page])
                self.machine.flash_changed(device.flash_start + page * device.page_size, device.page_size)
        except ValueError:
            self.sr |= WRPRTERR
            return
        self.cr &= ~STRT
        self.sr |= EOP
