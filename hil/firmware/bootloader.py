"""The device side of the STM32 system bootloader (AN3155) on a serial port.

Runs while the emulated MCU is held in bootloader mode (BOOT0 high at reset). It waits for the
0x7F sync byte, then serves Get, Get Version, Get ID, Read Memory, Go, Write Memory, the part's
one erase command (Erase 0x43 on an F1, Extended Erase 0x44 on v3.x bootloaders; the other is
NACKed), Write Protect/Unprotect and Readout Protect/Unprotect against the MCU's
:class:`FlashMemory` (and a RAM array), answering ACK 0x79 or NACK 0x1F exactly where the
application note says the silicon does. Read Memory also serves what a real part lets a host
read beyond flash and RAM (:class:`SystemMemory`: system memory, flash size, unique id, option
bytes). While readout protection is active, every command that reads, writes, erases or runs the
flash is NACKed; Readout Unprotect erases all of the flash.
The four protection commands end in a system reset (:class:`SystemReset`), as on the silicon.
Like the silicon it has no command time-outs: it waits for bytes until told to stop.
:meth:`serve` returns the Go address.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import serial

from hil.protocol import an3155 as P
from hil.firmware.flashmem import OptionBytes, SystemMemory

RAM_BASE = 0x2000_0000


class Stopped(Exception):
    """The MCU is being reset or powered off while the bootloader waited for bytes."""


class SystemReset(Exception):
    """The option bytes changed: the MCU resets to apply them (into the bootloader again while
    BOOT0 stays high)."""


class Bootloader:
    def __init__(self, port: serial.Serial, system: SystemMemory, stop: threading.Event,
                 log: Callable[[str], None] = lambda text: None):
        self.port = port
        self.system = system
        self.flash = system.flash
        self.device = self.flash.device
        # Get lists the part's one erase command, as the silicon does
        erase = self.device.family.erase
        assert erase is not None  # an emulated part's family is a known one (only the client meets unknown ones)
        self.commands = (P.GET, P.GET_VERSION, P.GET_ID, P.READ_MEMORY, P.GO, P.WRITE_MEMORY, erase, P.WRITE_PROTECT, P.WRITE_UNPROTECT, P.READOUT_PROTECT,
                         P.READOUT_UNPROTECT)
        self.ram = bytearray(self.device.ram_end - RAM_BASE)
        self.stop = stop
        self.log = log
        self.handlers = {P.GET: self._get, P.GET_VERSION: self._get_version, P.GET_ID: self._get_id,
                         P.READ_MEMORY: self._read_memory, P.GO: self._go, P.WRITE_MEMORY: self._write_memory,
                         P.ERASE: self._erase, P.EXTENDED_ERASE: self._extended_erase,
                         P.WRITE_PROTECT: self._write_protect, P.WRITE_UNPROTECT: self._write_unprotect,
                         P.READOUT_PROTECT: self._readout_protect, P.READOUT_UNPROTECT: self._readout_unprotect}

    def serve(self) -> int:
        """Sync, then serve commands until Go; return the Go address. Raises Stopped on stop."""
        while self._read(1)[0] != P.SYNC:
            pass
        self._send(P.ACK)
        self.log("bootloader: synchronised")
        while True:
            code, complement = self._read(2)
            handler = self.handlers.get(code) if code in self.commands else None
            if handler is None or complement != code ^ 0xFF or (
                    code in P.REFUSED_WHEN_PROTECTED and self.flash.options.read_protected):
                self._send(P.NACK)
                continue
            self._send(P.ACK)
            go = handler()
            if go is not None:
                return go

    # -- commands ------------------------------------------------------------------------------

    def _get(self) -> None:
        self._send(len(self.commands), self.device.family.version, *self.commands, P.ACK)

    def _get_version(self) -> None:
        self._send(self.device.family.version, 0x00, 0x00, P.ACK)

    def _get_id(self) -> None:
        pid = self.device.pid
        self._send(0x01, pid >> 8, pid & 0xFF, P.ACK)

    def _read_memory(self) -> None:
        address = self._address()
        if address is None:
            return
        n = self._counted_byte()
        if n is None:
            return
        data = self._memory(address, n + 1)
        if data is None:
            self._send(P.NACK)
            return
        self._send(P.ACK)
        self.port.write(data)

    def _go(self) -> int | None:
        address = self._address(executable=True)
        if address is not None:
            self.log(f"bootloader: go {address:#010x}")
        return address

    def _write_memory(self) -> None:
        address = self._address()
        if address is None:
            return
        n = self._read(1)[0]
        data = self._read(n + 1)
        checksum = self._read(1)[0]
        if checksum != P.xor(bytes([n]) + data) or not self._store(address, data):
            self._send(P.NACK)
            return
        self._send(P.ACK)

    def _erase(self) -> None:
        n = self._read(1)[0]
        if n == 0xFF:
            if self._read(1)[0] != 0x00:
                self._send(P.NACK)
                return
            self._mass_erase()
            return
        pages = self._read(n + 1)
        if self._read(1)[0] != P.xor(bytes([n]) + pages):
            self._send(P.NACK)
            return
        self._erase_pages(list(pages))

    def _extended_erase(self) -> None:
        head = self._read(2)
        n = int.from_bytes(head, "big")
        if n >= 0xFFF0:
            if self._read(1)[0] != P.xor(head) or n != P.MASS_ERASE:
                self._send(P.NACK)  # bank erases (0xFFFE/0xFFFD): this part has one bank
                return
            self._mass_erase()
            return
        raw = self._read(2 * (n + 1))
        if self._read(1)[0] != P.xor(head + raw):
            self._send(P.NACK)
            return
        self._erase_pages([int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)])

    def _write_protect(self) -> None:
        n = self._read(1)[0]
        pages = self._read(n + 1)
        if self._read(1)[0] != P.xor(bytes([n]) + pages) or max(pages) >= self.device.pages:
            self._send(P.NACK)
            return
        options = self.flash.options
        self._reset_with(OptionBytes(options.read_protected, sorted({*options.write_protected, *pages})),
                         f"write-protected page(s) {', '.join(map(str, pages))}")

    def _write_unprotect(self) -> None:
        self._reset_with(OptionBytes(self.flash.options.read_protected, []), "write protection removed")

    def _readout_protect(self) -> None:
        self._reset_with(OptionBytes(True, self.flash.options.write_protected), "readout protection on")

    def _readout_unprotect(self) -> None:
        self.flash.remove_readout_protection()
        self.log("bootloader: readout protection off, flash erased")
        self._send(P.ACK)
        raise SystemReset()

    # -- helpers -------------------------------------------------------------------------------

    def _reset_with(self, options: OptionBytes, what: str) -> None:
        """Program the option bytes, ACK, and reset to apply them."""
        self.flash.set_options(options)
        self.log(f"bootloader: {what}")
        self._send(P.ACK)
        raise SystemReset()

    def _erase_pages(self, pages: list[int]) -> None:
        try:
            self.flash.erase_pages(pages)
        except ValueError:  # a page out of range or write-protected
            self._send(P.NACK)
            return
        self.log(f"bootloader: erased {len(pages)} page(s)")
        self._send(P.ACK)

    def _mass_erase(self) -> None:
        try:
            self.flash.mass_erase()
        except ValueError:  # a write-protected page
            self._send(P.NACK)
            return
        self.log("bootloader: mass erase")
        self._send(P.ACK)

    def _address(self, executable: bool = False) -> int | None:
        """Receive address + checksum; ACK it if valid (NACK and return None otherwise)."""
        raw = self._read(5)
        address = int.from_bytes(raw[:4], "big")
        valid = raw[4] == P.xor(raw[:4]) and (self._memory(address, 1) is not None)
        if executable:
            valid = valid and self.flash.contains(address)
        self._send(P.ACK if valid else P.NACK)
        return address if valid else None

    def _counted_byte(self) -> int | None:
        n, complement = self._read(2)
        if complement != n ^ 0xFF:
            self._send(P.NACK)
            return None
        return n

    def _memory(self, address: int, length: int) -> bytes | None:
        if self.flash.contains(address, length):
            return self.flash.read(address, length)
        if self.device.ram_start <= address and address + length <= self.device.ram_end:
            return bytes(self.ram[address - RAM_BASE:address - RAM_BASE + length])
        return self.system.read(address, length)

    def _store(self, address: int, data: bytes) -> bool:
        if self.flash.contains(address, len(data)):
            try:
                self.flash.program(address, data)
            except ValueError:  # a write-protected page
                return False
            return True
        if self.device.ram_start <= address and address + len(data) <= self.device.ram_end:
            self.ram[address - RAM_BASE:address - RAM_BASE + len(data)] = data
            return True
        return False

    def _send(self, *values: int) -> None:
        self.port.write(bytes(values))

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            if self.stop.is_set():
                raise Stopped()
            out += self.port.read(n - len(out))
        return out
