"""Emulated flash memory: one file per MCU, erased to 0xFF, programmed like NOR flash.

Programming can only clear bits (new = old AND data), so writing over unerased flash corrupts the
contents exactly as it would on silicon — a flashing tool that forgets to erase is caught by the
image CRC at boot. The file outlives the MCU process, like flash outlives a reset or power cycle.

The option bytes live beside it (``FILE.options``, JSON): readout protection (RDP) and the
write-protected pages. Programming or erasing a write-protected page fails; the bootloader enforces
readout protection, as the silicon's does.

A page is the part's erase unit: a uniform page on most families, a sector of its own size on
F2/F4/F7/H7 (:class:`hil.protocol.an3155.Stm32Device` knows the layout).

:class:`SystemMemory` is what else the bootloader lets a host read: system memory (the ROM), the
flash-size and unique-id registers, and the option bytes as the family lays them out.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hil.protocol.an3155 import Stm32Device

BLOCK = 256  # the id registers are served in whole 256-byte blocks (stm32loader reads F4 ids that way)


@dataclass
class OptionBytes:
    read_protected: bool = False
    write_protected: list[int] = field(default_factory=list)  # pages


class FlashMemory:
    def __init__(self, path: str | Path, device: Stm32Device):
        self.path = Path(path)
        self.device = device
        if not self.path.exists() or self.path.stat().st_size != device.flash_size:
            self.path.write_bytes(b"\xff" * device.flash_size)

    @property
    def options_path(self) -> Path:
        return self.path.with_name(self.path.name + ".options")

    @property
    def options(self) -> OptionBytes:
        """The option bytes as they are now (read afresh: another process may have changed them)."""
        try:
            return OptionBytes(**json.loads(self.options_path.read_text()))
        except FileNotFoundError:
            return OptionBytes()

    def set_options(self, options: OptionBytes) -> None:
        tmp = self.options_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(options)))
        tmp.replace(self.options_path)

    def contains(self, address: int, length: int = 1) -> bool:
        d = self.device
        return d.flash_start <= address and address + length <= d.flash_end

    def read(self, address: int, length: int) -> bytes:
        self._check(address, length)
        with self.path.open("rb") as f:
            f.seek(address - self.device.flash_start)
            return f.read(length)

    def program(self, address: int, data: bytes) -> None:
        self._check(address, len(data))
        self._writable(range(self.device.page_of(address), self.device.page_of(address + len(data) - 1) + 1))
        old = self.read(address, len(data))
        new = bytes(a & b for a, b in zip(old, data))
        self._write(address - self.device.flash_start, new)

    def erase_pages(self, pages: list[int]) -> None:
        d = self.device
        bad = [p for p in pages if not 0 <= p < d.pages]
        if bad:
            raise ValueError(f"page {bad[0]} outside 0..{d.pages - 1}")
        self._writable(pages)
        for p in pages:
            offset, size = d.page_span(p)
            self._write(offset, b"\xff" * size)

    def mass_erase(self) -> None:
        self._writable(range(self.device.pages))
        self._write(0, b"\xff" * self.device.flash_size)

    def remove_readout_protection(self) -> None:
        """As the silicon does when RDP goes from level 1 to 0: erase all of the flash first (its
        secrets with it), then reset the option bytes."""
        self._write(0, b"\xff" * self.device.flash_size)
        self.set_options(OptionBytes())

    def image_area(self) -> bytes:
        """The whole flash from its start address, where the image lives."""
        return self.read(self.device.flash_start, self.device.flash_size)

    def _write(self, offset: int, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def _writable(self, pages: range | list[int]) -> None:
        protected = set(self.options.write_protected).intersection(pages)
        if protected:
            raise ValueError(f"page {min(protected)} is write-protected")

    def _check(self, address: int, length: int) -> None:
        if not self.contains(address, length):
            d = self.device
            raise ValueError(f"{length} bytes at {address:#010x} are outside flash "
                             f"{d.flash_start:#010x}..{d.flash_end:#010x}")


def unique_id(name: str) -> bytes:
    """The 96-bit unique id of the emulated MCU ``name``: the same on every run, different per MCU."""
    return hashlib.sha256(name.encode()).digest()[:12]


class SystemMemory:
    """The read-only areas a part's bootloader serves besides flash and RAM.

    System memory reads as the ROM's vector table (initial SP at the top of RAM, reset handler in
    the ROM) and zeros: ST's code is not ours to serve. The flash-size register holds the flash
    size in KiB; the unique id is the 12 bytes given. Option bytes are rendered from the flash's
    :class:`OptionBytes` on every read, in the family's layout: ``f1`` (F0/F1/F3: RDP, USER,
    DATA0/1, WRP0..3, each followed by its complement; a WRP bit covers 4 1-KiB or 2 2-KiB pages)
    or ``f4`` (F2/F4/F7: USER, RDP (0xAA: level 0), then nWRP at +8, one bit per sector).
    """

    def __init__(self, flash: FlashMemory, uid: bytes):
        d = self.device = flash.device
        self.flash = flash
        fam = d.family
        if fam.option_format is None:
            raise ValueError(f"{d.name} ({fam.name}) is not a part hil emulates")
        self.areas: list[tuple[int, bytearray]] = []
        rom = bytearray(d.system[1] - d.system[0])
        rom[:8] = d.ram_end.to_bytes(4, "little") + (d.system[0] + 0x101).to_bytes(4, "little")
        self.areas.append((d.system[0], rom))
        registers = [(fam.uid_reg, uid[:12]), (fam.flash_size_reg, (d.flash_size // 1024).to_bytes(2, "little"))]
        for address, value in registers:
            if address is not None:
                start, data = self._area_for(address)
                data[address - start:address - start + len(value)] = value

    def _area_for(self, address: int) -> tuple[int, bytearray]:
        """The area that holds ``address``; a 256-byte block of its own when none does."""
        for start, data in self.areas:
            if start <= address < start + len(data):
                return start, data
        block = (address & ~(BLOCK - 1), bytearray(BLOCK))
        self.areas.append(block)
        return block

    def read(self, address: int, length: int) -> bytes | None:
        """``length`` bytes at ``address``, or None where the part has nothing to read."""
        options = self.device.family.options
        if options and options[0] <= address and address + length <= options[1]:
            image = self.options_image()
            return image[address - options[0]:address - options[0] + length]
        for start, data in self.areas:
            if start <= address and address + length <= start + len(data):
                return bytes(data[address - start:address - start + length])
        return None

    def options_image(self) -> bytes:
        """The option-byte area as the part lays it out."""
        d, ob = self.device, self.flash.options
        assert d.family.options is not None  # read only for a part with option bytes (see read)
        start, end = d.family.options
        if d.family.option_format == "f1":
            per_bit = 4 if d.page_span(0)[1] <= 1024 else 2
            wrp = 0xFFFF_FFFF
            for page in ob.write_protected:
                wrp &= ~(1 << min(page // per_bit, 31))
            rdp0 = 0xA5 if d.family.name == "F1" else 0xAA
            values = [0x00 if ob.read_protected else rdp0, 0xFF, 0xFF, 0xFF, *wrp.to_bytes(4, "little")]
            image = b"".join(bytes([v, v ^ 0xFF]) for v in values)
        else:
            nwrp = 0xFFFF
            for sector in ob.write_protected:
                nwrp &= ~(1 << sector)
            image = bytes([0xEC, 0x55 if ob.read_protected else 0xAA]) + b"\xff" * 6 + nwrp.to_bytes(2, "little")
        return image.ljust(end - start, b"\xff")
