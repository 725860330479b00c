"""ELF images (pyelftools): the flash bytes a linker placed, and symbols for fault reports.

``flash_bytes`` is what ``objcopy -O binary`` would write for the loadable segments at or above the
flash start (by load address, so .data's initial values come along); ``Symbols`` names an address
as ``function+offset``.
"""

from __future__ import annotations

import bisect
import io
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

ELF_MAGIC = b"\x7fELF"


class ElfImageError(ValueError):
    """Not an ELF for this part; the message says what was expected."""


def flash_bytes(data: bytes, flash_start: int, flash_size: int) -> bytes:
    """The image as it lies in flash from ``flash_start`` (gaps filled with 0xFF, as erased)."""
    try:
        elf = ELFFile(io.BytesIO(data))
        segments = [(s["p_paddr"], s.data()) for s in elf.iter_segments()
                    if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
    except ELFError as exc:
        raise ElfImageError(f"not a readable ELF file: {exc}") from None
    if elf["e_machine"] != "EM_ARM":
        raise ElfImageError(f"expected an ELF for ARM (EM_ARM), got {elf['e_machine']}")
    end = flash_start + flash_size
    outside = [addr for addr, blob in segments if not flash_start <= addr and addr + len(blob) <= end]
    if outside or not segments:
        where = f"a segment loads at {outside[0]:#010x}" if outside else "it has no loadable segment"
        raise ElfImageError(f"expected segments inside flash {flash_start:#010x}..{end:#010x}; {where}")
    top = max(addr + len(blob) for addr, blob in segments)
    image = bytearray(b"\xff" * (top - flash_start))
    for addr, blob in segments:
        image[addr - flash_start:addr - flash_start + len(blob)] = blob
    return bytes(image)


class Symbols:
    """Function and object symbols of an ELF, to name addresses."""

    def __init__(self, entries: list[tuple[int, int, str]]):
        self.entries = sorted(entries)
        sized: dict[int, tuple[int, int, str]] = {}
        for entry in entries:  # one name per address: the first given (aliases come after)
            if entry[1]:
                sized.setdefault(entry[0], entry)
        self.sized = sorted(sized.values())
        self.starts = [e[0] for e in self.sized]

    @classmethod
    def from_file(cls, path: str | Path) -> Symbols:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            table = elf.get_section_by_name(".symtab")
            if not isinstance(table, SymbolTableSection):  # none (a .symtab is always one)
                return cls([])
            symbols = sorted((s["st_info"]["bind"] == "STB_WEAK", s.name, s) for s in table.iter_symbols()
                             if s.name and s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT"))
        # strong symbols first, so a weak alias (startup code's handler names) never hides its target
        return cls([(s["st_value"] & ~1 if s["st_info"]["type"] == "STT_FUNC" else s["st_value"], s["st_size"], name)
                    for _, name, s in symbols])

    def address(self, name: str) -> int | None:
        return next((addr for addr, _, n in self.entries if n == name), None)

    def name(self, address: int) -> str | None:
        """``symbol+0xoff`` for an address inside a function or object, else None."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0:
            return None
        start, size, name = self.sized[i]
        if address >= start + size:
            return None
        return f"{name}+{address - start:#x}" if address != start else name
