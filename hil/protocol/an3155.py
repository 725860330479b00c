"""The STM32 UART bootloader protocol (ST application note AN3155) and the parts it runs on:
constants shared by the device side (:mod:`hil.firmware.bootloader`) and the client
(:mod:`hil.flash.stm32`), and the device table both use (and the rig's ``part:`` names).

Every command is the command byte and its complement; every address or data block ends with the
XOR of its bytes (a single byte is followed by its complement). The device answers ACK or NACK.

The device table follows ST's AN2606 ("bootloader device-dependent parameters") and each family's
reference manual: the product id Get ID returns, the flash's start and its erase units in order
(uniform pages on most families, sectors of 16/64/128 KiB on F2/F4, 32/128/256 KiB on F74x/F76x,
128 KiB on H7), the RAM the bootloader leaves to the host, system memory, option bytes, the
flash-size and unique-id registers, and the one erase command the bootloader offers (Erase 0x43
on the F1's v2.2 bootloader, Extended Erase 0x44 on every v3.x one). AN3155 calls every erase unit
a page; so does this module.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from dataclasses import dataclass, field
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
MAX_BLOCK = 256
MASS_ERASE = 0xFFFF  # Extended Erase special code; Erase uses the single byte 0xFF
LEGACY_MAX_PAGE = 0xFF  # Erase (0x43) names each page in one byte
KIB = 1024


def xor(data: bytes) -> int:
    """The AN3155 checksum: XOR of every byte."""
    return reduce(lambda a, b: a ^ b, data, 0)


def with_checksum(data: bytes) -> bytes:
    return data + bytes([xor(data)]) if len(data) > 1 else data + bytes([data[0] ^ 0xFF])


def command(code: int) -> bytes:
    return bytes([code, code ^ 0xFF])


@dataclass(frozen=True)
class Stm32Family:
    """What every part of a family shares: its bootloader and the addresses of its registers."""

    name: str
    erase: int | None  # ERASE or EXTENDED_ERASE (None: unknown, the bootloader's Get tells)
    version: int = 0x31  # the bootloader protocol version Get returns (0x22: v2.2)
    flash_size_reg: int | None = None  # 16-bit flash size in KiB
    uid_reg: int | None = None  # 96-bit unique device id
    options: tuple[int, int] | None = None  # option bytes [start, end)
    option_format: str | None = None  # how the emulation lays the option bytes out: "f1", "f4" (None: not emulated)


FAMILIES = {f.name: f for f in (
    # family   erase           version  flash size    unique id     option bytes                  layout
    Stm32Family("F0", EXTENDED_ERASE, 0x31, 0x1FFF_F7CC, 0x1FFF_F7AC, (0x1FFF_F800, 0x1FFF_F810), "f1"),
    Stm32Family("F1", ERASE, 0x22, 0x1FFF_F7E0, 0x1FFF_F7E8, (0x1FFF_F800, 0x1FFF_F810), "f1"),
    Stm32Family("F2", EXTENDED_ERASE, 0x31, 0x1FFF_7A22, 0x1FFF_7A10, (0x1FFF_C000, 0x1FFF_C010), "f4"),
    Stm32Family("F3", EXTENDED_ERASE, 0x31, 0x1FFF_F7CC, 0x1FFF_F7AC, (0x1FFF_F800, 0x1FFF_F810), "f1"),
    Stm32Family("F4", EXTENDED_ERASE, 0x31, 0x1FFF_7A22, 0x1FFF_7A10, (0x1FFF_C000, 0x1FFF_C010), "f4"),
    Stm32Family("F7", EXTENDED_ERASE, 0x31, 0x1FF0_F442, 0x1FF0_F420, (0x1FFF_0000, 0x1FFF_0020), "f4"),
    Stm32Family("G0", EXTENDED_ERASE, 0x31, 0x1FFF_75E0, 0x1FFF_7590, (0x1FFF_7800, 0x1FFF_7880)),
    Stm32Family("G4", EXTENDED_ERASE, 0x31, 0x1FFF_75E0, 0x1FFF_7590, (0x1FFF_7800, 0x1FFF_7830)),
    Stm32Family("L4", EXTENDED_ERASE, 0x31, 0x1FFF_75E0, 0x1FFF_7590, (0x1FFF_7800, 0x1FFF_7810)),
    Stm32Family("H7", EXTENDED_ERASE, 0x31, 0x1FF1_E880, 0x1FF1_E800),
)}
UNKNOWN_FAMILY = Stm32Family("?", None)

Layout = tuple[tuple[int, int], ...]  # runs of (count, size in bytes) of erase units, in address order


@dataclass(frozen=True)
class Stm32Device:
    """One STM32 part as its system bootloader exposes it."""

    pid: int
    name: str
    family: Stm32Family
    flash_start: int
    layout: Layout
    ram_start: int  # the first RAM byte the bootloader leaves to the host
    ram_end: int
    system: tuple[int, int] = (0, 0)  # system memory (the bootloader's ROM) [start, end)
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts, offset = [], 0
        for count, size in self.layout:
            for _ in range(count):
                starts.append(offset)
                offset += size
        object.__setattr__(self, "_starts", (*starts, offset))

    @property
    def flash_size(self) -> int:
        return self._starts[-1]

    @property
    def flash_end(self) -> int:
        return self.flash_start + self.flash_size

    @property
    def pages(self) -> int:
        """How many erase units (pages or sectors) the flash has."""
        return len(self._starts) - 1

    @property
    def page_size(self) -> int:
        """The size of every page of a uniformly paged flash (ValueError for sectors)."""
        if len(self.layout) != 1:
            raise ValueError(f"{self.name} has sectors of different sizes")
        return self.layout[0][1]

    def page_of(self, address: int) -> int:
        """The page (or sector) that holds ``address``."""
        return bisect.bisect_right(self._starts, address - self.flash_start) - 1

    def page_span(self, page: int) -> tuple[int, int]:
        """Offset from the flash start and size of ``page``."""
        return self._starts[page], self._starts[page + 1] - self._starts[page]

    def describe(self) -> str:
        """Flash size and erase units, e.g. '1024 KiB: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB'."""
        runs = ", ".join(f"{n} x {_size(size)}" for n, size in self.layout)
        return f"{_size(self.flash_size)} at {self.flash_start:#010x}: {runs}"


def _size(n: int) -> str:
    return f"{n // KIB} KiB" if n % KIB == 0 else f"{n} B"


def _pages(count: int, size_kib: int) -> Layout:
    return ((count, size_kib * KIB),)


def _sectors(*runs: tuple[int, int]) -> Layout:
    return tuple((count, size_kib * KIB) for count, size_kib in runs)


F2F4 = (4, 16), (1, 64)  # the first five sectors of an F2/F4 bank; then 128 KiB ones
F7 = (4, 32), (1, 128)  # F74x/F75x/F76x/F77x; then 256 KiB ones
FLASH = 0x0800_0000
ROW = tuple[int, str, str, Layout, int, int, int, int]

# pid, family, name, erase units, RAM for the host [start, end), system memory [start, end)
PARTS: tuple[ROW, ...] = (
    (0x440, "F0", "STM32F030x8/F05xxx", _pages(64, 1), 0x2000_0800, 0x2000_2000, 0x1FFF_EC00, 0x1FFF_F800),
    (0x444, "F0", "STM32F03xx4/6", _pages(32, 1), 0x2000_0800, 0x2000_1000, 0x1FFF_EC00, 0x1FFF_F800),
    (0x442, "F0", "STM32F030xC/F09xxx", _pages(128, 2), 0x2000_1800, 0x2000_8000, 0x1FFF_D800, 0x1FFF_F800),
    (0x445, "F0", "STM32F04xxx/F070x6", _pages(32, 1), 0x2000_1800, 0x2000_1800, 0x1FFF_C400, 0x1FFF_F800),
    (0x448, "F0", "STM32F070xB/F071xx/F72xx", _pages(64, 2), 0x2000_1800, 0x2000_4000, 0x1FFF_C800, 0x1FFF_F800),
    (0x412, "F1", "STM32F10xxx Low-density", _pages(32, 1), 0x2000_0200, 0x2000_2800, 0x1FFF_F000, 0x1FFF_F800),
    (0x410, "F1", "STM32F10xxx Medium-density", _pages(128, 1), 0x2000_0200, 0x2000_5000, 0x1FFF_F000, 0x1FFF_F800),
    (0x414, "F1", "STM32F10xxx High-density", _pages(256, 2), 0x2000_0200, 0x2001_0000, 0x1FFF_F000, 0x1FFF_F800),
    (0x420, "F1", "STM32F10xxx Medium-density VL", _pages(128, 1), 0x2000_0200, 0x2000_2000, 0x1FFF_F000,
     0x1FFF_F800),
    (0x428, "F1", "STM32F10xxx High-density VL", _pages(256, 2), 0x2000_0200, 0x2000_8000, 0x1FFF_F000, 0x1FFF_F800),
    (0x418, "F1", "STM32F105xx/F107xx", _pages(128, 2), 0x2000_1000, 0x2001_0000, 0x1FFF_B000, 0x1FFF_F800),
    (0x430, "F1", "STM32F10xxx XL-density", _pages(512, 2), 0x2000_0800, 0x2001_8000, 0x1FFF_E000, 0x1FFF_F800),
    (0x411, "F2", "STM32F2xxxx", _sectors(*F2F4, (7, 128)), 0x2000_2000, 0x2002_0000, 0x1FFF_0000, 0x1FFF_7800),
    (0x432, "F3", "STM32F373xx/F378xx", _pages(128, 2), 0x2000_1400, 0x2000_8000, 0x1FFF_D800, 0x1FFF_F800),
    (0x422, "F3", "STM32F302xB(C)/F303xB(C)/F358xx", _pages(128, 2), 0x2000_1400, 0x2000_A000, 0x1FFF_D800,
     0x1FFF_F800),
    (0x439, "F3", "STM32F301xx/F302x4(6/8)/F318xx", _pages(32, 2), 0x2000_1800, 0x2000_4000, 0x1FFF_D800,
     0x1FFF_F800),
    (0x438, "F3", "STM32F303x4(6/8)/F334xx/F328xx", _pages(32, 2), 0x2000_1800, 0x2000_3000, 0x1FFF_D800,
     0x1FFF_F800),
    (0x446, "F3", "STM32F302xD(E)/F303xD(E)/F398xx", _pages(256, 2), 0x2000_1800, 0x2001_0000, 0x1FFF_D800,
     0x1FFF_F800),
    (0x413, "F4", "STM32F40xxx/41xxx", _sectors(*F2F4, (7, 128)), 0x2000_3000, 0x2002_0000, 0x1FFF_0000,
     0x1FFF_7800),
    (0x419, "F4", "STM32F42xxx/43xxx", _sectors(*F2F4, (7, 128), *F2F4, (7, 128)), 0x2000_3000, 0x2003_0000,
     0x1FFF_0000, 0x1FFF_7800),
    (0x423, "F4", "STM32F401xB(C)", _sectors(*F2F4, (1, 128)), 0x2000_3000, 0x2001_0000, 0x1FFF_0000, 0x1FFF_7800),
    (0x433, "F4", "STM32F401xD(E)", _sectors(*F2F4, (3, 128)), 0x2000_3000, 0x2001_8000, 0x1FFF_0000, 0x1FFF_7800),
    (0x458, "F4", "STM32F410xx", _sectors(*F2F4), 0x2000_3000, 0x2000_8000, 0x1FFF_0000, 0x1FFF_7800),
    (0x431, "F4", "STM32F411xx", _sectors(*F2F4, (3, 128)), 0x2000_3000, 0x2002_0000, 0x1FFF_0000, 0x1FFF_7800),
    (0x441, "F4", "STM32F412xx", _sectors(*F2F4, (7, 128)), 0x2000_3000, 0x2004_0000, 0x1FFF_0000, 0x1FFF_7800),
    (0x421, "F4", "STM32F446xx", _sectors(*F2F4, (3, 128)), 0x2000_3000, 0x2002_0000, 0x1FFF_0000, 0x1FFF_7800),
    (0x463, "F4", "STM32F413xx/423xx", _sectors(*F2F4, (11, 128)), 0x2000_3000, 0x2005_0000, 0x1FFF_0000,
     0x1FFF_7800),
    (0x452, "F7", "STM32F72xxx/73xxx", _sectors(*F2F4, (3, 128)), 0x2000_4000, 0x2004_0000, 0x1FF0_0000,
     0x1FF0_EDC0),
    (0x449, "F7", "STM32F74xxx/75xxx", _sectors(*F7, (3, 256)), 0x2000_4000, 0x2005_0000, 0x1FF0_0000, 0x1FF0_EDC0),
    (0x451, "F7", "STM32F76xxx/77xxx", _sectors(*F7, (7, 256)), 0x2000_4000, 0x2008_0000, 0x1FF0_0000, 0x1FF0_EDC0),
    (0x466, "G0", "STM32G03xxx/04xxx", _pages(32, 2), 0x2000_1000, 0x2000_2000, 0x1FFF_0000, 0x1FFF_2000),
    (0x460, "G0", "STM32G07xxx/08xxx", _pages(64, 2), 0x2000_2700, 0x2000_9000, 0x1FFF_0000, 0x1FFF_7000),
    (0x467, "G0", "STM32G0B0/B1/C1xx", _pages(256, 2), 0x2000_4000, 0x2002_0000, 0x1FFF_0000, 0x1FFF_7000),
    (0x456, "G0", "STM32G05xxx/061xx", _pages(32, 2), 0x2000_1000, 0x2000_4800, 0x1FFF_0000, 0x1FFF_2000),
    (0x468, "G4", "STM32G431xx/441xx", _pages(64, 2), 0x2000_4000, 0x2000_5800, 0x1FFF_0000, 0x1FFF_7000),
    (0x469, "G4", "STM32G47xxx/48xxx", _pages(256, 2), 0x2000_4000, 0x2001_8000, 0x1FFF_0000, 0x1FFF_7000),
    (0x479, "G4", "STM32G491xx/A1xx", _pages(256, 2), 0x2000_4000, 0x2001_C000, 0x1FFF_0000, 0x1FFF_7000),
    (0x464, "L4", "STM32L412xx/422xx", _pages(64, 2), 0x2000_3100, 0x2000_8000, 0x1FFF_0000, 0x1FFF_7000),
    (0x435, "L4", "STM32L43xxx/44xxx", _pages(128, 2), 0x2000_3100, 0x2000_C000, 0x1FFF_0000, 0x1FFF_7000),
    (0x462, "L4", "STM32L45xxx/46xxx", _pages(256, 2), 0x2000_3100, 0x2002_0000, 0x1FFF_0000, 0x1FFF_7000),
    (0x415, "L4", "STM32L47xxx/48xxx", _pages(512, 2), 0x2000_3100, 0x2001_8000, 0x1FFF_0000, 0x1FFF_7000),
    (0x461, "L4", "STM32L496xx/4A6xx", _pages(512, 2), 0x2000_3100, 0x2004_0000, 0x1FFF_0000, 0x1FFF_7000),
    (0x450, "H7", "STM32H74xxx/75xxx", _sectors((16, 128)), 0x2000_4100, 0x2002_0000, 0x1FF0_0000, 0x1FF1_E800),
    (0x483, "H7", "STM32H72xxx/73xxx", _sectors((8, 128)), 0x2000_4100, 0x2002_0000, 0x1FF0_0000, 0x1FF1_E800),
)

DEVICES = {pid: Stm32Device(pid, name, FAMILIES[family], FLASH, layout, ram_start, ram_end, (sys_start, sys_end))
           for pid, family, name, layout, ram_start, ram_end, sys_start, sys_end in PARTS}
DEFAULT_PID = 0x414
EMULATED = {pid: d for pid, d in DEVICES.items() if d.family.option_format is not None}


def from_geometry(pid: int, flash_start: int, layout: Layout) -> Stm32Device:
    """A part hil's table lacks, described by the rig (``flash.geometry``)."""
    return Stm32Device(pid, f"part {pid:#05x} (geometry from the rig)", UNKNOWN_FAMILY, flash_start, layout, 0, 0)


def with_flash_size(device: Stm32Device, size: int | None) -> Stm32Device:
    """``device`` with only the first ``size`` bytes of its flash (a smaller variant under the same
    product id); unchanged when ``size`` is None, not smaller, or not at a page boundary."""
    if size is None or not 0 < size < device.flash_size or size not in device._starts:
        return device
    layout: list[tuple[int, int]] = []
    left = size
    for count, unit in device.layout:
        take = min(count, left // unit)
        if take:
            layout.append((take, unit))
        left -= take * unit
    return dataclasses.replace(device, name=f"{device.name} ({size // KIB} KiB)", layout=tuple(layout))


def known_ids(devices: dict[int, Stm32Device] = DEVICES) -> str:
    """Product ids by family, for messages: 'F0 0x440 0x444 ...; F1 ...'."""
    by_family: dict[str, list[str]] = {}
    for pid, device in devices.items():
        by_family.setdefault(device.family.name, []).append(f"{pid:#05x}")
    return "; ".join(f"{family} {' '.join(pids)}" for family, pids in by_family.items())


def open_uart(port: str, baudrate: int, timeout: float) -> serial.Serial:
    """Open ``port`` as AN3155 wants it: 8 data bits, even parity, 1 stop bit.

    A pty carries bytes, not bits: Linux refuses PARENB on a pty (EINVAL), so on a pty the port is
    opened without parity — nothing is lost, there is no line to corrupt a bit on.
    """
    return serial.Serial(port, baudrate, bytesize=8, parity=uart_parity(port), stopbits=1, timeout=timeout)


def uart_parity(port: str) -> str:
    """Even parity, as AN3155 wants, except on a pty (see :func:`open_uart`)."""
    return serial.PARITY_NONE if is_pty(port) else serial.PARITY_EVEN


def is_pty(port: str) -> bool:
    """True for a Unix98 pty slave (major numbers 136..143)."""
    try:
        return 136 <= os.major(os.stat(port).st_rdev) <= 143
    except OSError:
        return False
