"""The STM32 UART bootloader protocol (ST application note AN3155): constants shared by the
device side (:mod:`hil.firmware.bootloader`) and the client (:mod:`hil.flash.stm32`).

Every command is the command byte and its complement; every address or data block ends with the
XOR of its bytes (a single byte is followed by its complement). The device answers ACK or NACK.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import reduce

import serial

SYNC = 0x7F
ACK = 0x79
NACK = 0x1F

GET = 0x00
GET_VERSION = 0x01
GET_ID = 0x02
READ_MEMORY = 0x11
GO = 0x21
WRITE_MEMORY = 0x31
ERASE = 0x43
EXTENDED_ERASE = 0x44
WRITE_PROTECT = 0x63
WRITE_UNPROTECT = 0x73
READOUT_PROTECT = 0x82
READOUT_UNPROTECT = 0x92

COMMAND_NAMES = {GET: "Get", GET_VERSION: "Get Version", GET_ID: "Get ID", READ_MEMORY: "Read Memory",
                 GO: "Go", WRITE_MEMORY: "Write Memory", ERASE: "Erase", EXTENDED_ERASE: "Extended Erase",
                 WRITE_PROTECT: "Write Protect", WRITE_UNPROTECT: "Write Unprotect",
                 READOUT_PROTECT: "Readout Protect", READOUT_UNPROTECT: "Readout Unprotect"}
# What the bootloader NACKs while readout protection (RDP) is active.
REFUSED_WHEN_PROTECTED = frozenset({READ_MEMORY, GO, WRITE_MEMORY, ERASE, EXTENDED_ERASE, WRITE_PROTECT,
                                    WRITE_UNPROTECT, READOUT_PROTECT})
BOOTLOADER_VERSION = 0x31  # protocol version 3.1
MAX_BLOCK = 256
MASS_ERASE = 0xFFFF  # Extended Erase special code; Erase uses the single byte 0xFF


def xor(data: bytes) -> int:
    """The AN3155 checksum: XOR of every byte."""
    return reduce(lambda a, b: a ^ b, data, 0)


def with_checksum(data: bytes) -> bytes:
    return data + bytes([xor(data)]) if len(data) > 1 else data + bytes([data[0] ^ 0xFF])


def command(code: int) -> bytes:
    return bytes([code, code ^ 0xFF])


@dataclass(frozen=True)
class Stm32Device:
    """Memory map of one STM32 part as the system bootloader exposes it."""

    pid: int
    name: str
    flash_start: int
    flash_end: int
    page_size: int
    ram_start: int
    ram_end: int

    @property
    def flash_size(self) -> int:
        return self.flash_end - self.flash_start

    @property
    def pages(self) -> int:
        return self.flash_size // self.page_size

    def page_of(self, address: int) -> int:
        return (address - self.flash_start) // self.page_size


# The parts the emulated MCU can be; the memory maps match ST's datasheets (and stm32flash's table).
DEVICES = {
    0x410: Stm32Device(0x410, "STM32F10xxx Medium-density", 0x0800_0000, 0x0802_0000, 1024,
                       0x2000_0200, 0x2000_5000),
    0x414: Stm32Device(0x414, "STM32F10xxx High-density", 0x0800_0000, 0x0808_0000, 2048,
                       0x2000_0200, 0x2001_0000),
}
DEFAULT_PID = 0x414


def open_uart(port: str, baudrate: int, timeout: float) -> serial.Serial:
    """Open ``port`` as AN3155 wants it: 8 data bits, even parity, 1 stop bit.

    A pty carries bytes, not bits: Linux refuses PARENB on a pty (EINVAL), so on a pty the port is
    opened without parity — nothing is lost, there is no line to corrupt a bit on.
    """
    parity = serial.PARITY_NONE if is_pty(port) else serial.PARITY_EVEN
    return serial.Serial(port, baudrate, bytesize=8, parity=parity, stopbits=1, timeout=timeout)


def is_pty(port: str) -> bool:
    """True for a Unix98 pty slave (major numbers 136..143)."""
    try:
        return 136 <= os.major(os.stat(port).st_rdev) <= 143
    except OSError:
        return False
