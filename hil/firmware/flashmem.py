"""Emulated flash memory: one file per MCU, erased to 0xFF, programmed like NOR flash.

Programming can only clear bits (new = old AND data), so writing over unerased flash corrupts the
contents exactly as it would on silicon — a flashing tool that forgets to erase is caught by the
image CRC at boot. The file outlives the MCU process, like flash outlives a reset or power cycle.

The option bytes live beside it (``FILE.options``, JSON): readout protection (RDP) and the
write-protected pages. Programming or erasing a write-protected page fails; the bootloader enforces
readout protection, as the silicon's does.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hil.flash.an3155 import Stm32Device


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
            self._write(p * d.page_size, b"\xff" * d.page_size)

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
