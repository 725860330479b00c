"""USART: the console. Transmit and receive paced at the baud rate BRR gives, with the flags and
interrupts a driver uses — TXE, TC, RXNE, ORE (IDLE, parity and framing errors are not modelled),
RM0008 §27.

A character takes 10 bit times (11 with ``M``) on the run clock: DR → shift register at once when
it is idle (TXE stays set), else held until the shift register is free; TC when the last one is
out. Received bytes come one character time apart; one arriving while RXNE is still set is lost
with ORE, as on silicon. When the rig's console runs at another baud rate than BRR gives, the
console says so once: a board would print garbage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from hil.cortexm.mmio import Peripheral

SR, DR, BRR, CR1, CR2, CR3, GTPR = range(0, 0x1C, 4)
ORE, RXNE, TC, TXE = 1 << 3, 1 << 5, 1 << 6, 1 << 7
RE, TE, RXNEIE, TCIE, TXEIE, M, UE = 1 << 2, 1 << 3, 1 << 5, 1 << 6, 1 << 7, 1 << 12, 1 << 13


class Usart(Peripheral):
    def __init__(self, machine, base: int, name: str, irq: int, apb2: bool,
                 out: Callable[[bytes], None] | None = None, baudrate: int | None = None):
        self.irq, self.apb2 = irq, apb2
        self.out = out or (lambda data: None)  # not wired: characters leave into nothing
        self.baudrate = baudrate
        self.rx: deque[int] = deque()
        super().__init__(machine, base, name)

    def reset(self) -> None:
        self.sr = TXE | TC
        self.dr = 0
        self.brr = 0
        self.cr1 = self.cr2 = self.cr3 = self.gtpr = 0
        self.tdr: int | None = None  # waiting in DR for the shift register
        self.shift_done: int | None = None  # run-clock ns when the shift register empties
        self.rx_next = 0
        self.rx.clear()
        self.warned = False

    def receive(self, data: bytes) -> None:
        """Bytes from the wire (the console's pty), delivered a character time apart."""
        self.rx.extend(data)

    def _char_ns(self) -> int:
        clock = self.machine.rcc.pclk2 if self.apb2 else self.machine.rcc.pclk1
        baud = clock / self.brr if self.brr else 115_200
        return int((11 if self.cr1 & M else 10) * 1e9 / baud)

    def _check_baud(self) -> None:
        if self.warned or not self.brr or not self.baudrate:
            return
        clock = self.machine.rcc.pclk2 if self.apb2 else self.machine.rcc.pclk1
        baud = clock / self.brr
        if abs(baud - self.baudrate) > 0.03 * self.baudrate:
            self.warned = True
            self.machine.diagnostic(f"{self.name.lower()}: BRR {self.brr:#x} at {clock / 1e6:g} MHz gives "
                                    f"{baud:.0f} baud, the console runs at {self.baudrate}: a board would print garbage")

    def read(self, offset: int) -> int:
        if offset == SR:
            return self.sr
        if offset == DR:
            value = self.dr
            self.sr &= ~(RXNE | ORE)
            self._irq()
            return value
        return {BRR: self.brr, CR1: self.cr1, CR2: self.cr2, CR3: self.cr3, GTPR: self.gtpr}.get(offset, 0)

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset == SR:
            self.sr &= value | ~(RXNE | TC)  # rc_w0
        elif offset == DR:
            if self.cr1 & UE and self.cr1 & TE:
                self._transmit(value & 0x1FF)
        elif offset == BRR:
            self.brr = value & 0xFFFF
        elif offset == CR1:
            self.cr1 = value & 0x3FFF
            if value & UE and value & TE:
                self._check_baud()
        elif offset == CR2:
            self.cr2 = value
        elif offset == CR3:
            self.cr3 = value
        elif offset == GTPR:
            self.gtpr = value
        self._irq()

    def _transmit(self, char: int) -> None:
        self.sr &= ~TC
        if self.shift_done is None:
            self._shift(char, self.machine.now())
        else:
            self.tdr = char
            self.sr &= ~TXE

    def _shift(self, char: int, start: int) -> None:
        self.out(bytes([char & 0xFF]))
        self.shift_done = start + self._char_ns()

    def due(self) -> int | None:
        rx_due = self.rx_next if self.rx and self.cr1 & UE and self.cr1 & RE else None
        if rx_due is None:
            return self.shift_done
        return rx_due if self.shift_done is None else min(rx_due, self.shift_done)

    def service(self, now: int) -> None:
        if self.shift_done is not None and now >= self.shift_done:
            if self.tdr is not None:
                char, self.tdr = self.tdr, None
                self._shift(char, self.shift_done)
                self.sr |= TXE
            else:
                self.shift_done = None
                self.sr |= TC
        if self.rx and self.cr1 & UE and self.cr1 & RE and now >= self.rx_next:
            char = self.rx.popleft()
            if self.sr & RXNE:
                self.sr |= ORE
            else:
                self.dr = char
                self.sr |= RXNE
            self.rx_next = now + self._char_ns()
        self._irq()

    def _irq(self) -> None:
        cr1, sr = self.cr1, self.sr
        level = bool(cr1 & TXEIE and sr & TXE or cr1 & TCIE and sr & TC or cr1 & RXNEIE and sr & (RXNE | ORE))
        self.machine.irq(self.irq, level)
