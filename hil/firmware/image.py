"""Firmware images: a fixed little-endian header followed by the payload.

Layout (``HEADER.size`` = 84 bytes, then ``payload_length`` bytes)::

    offset size  field
    0      4     magic            b"HILF"
    4      2     format_version   1
    6      2     header_size      84
    8      32    name             UTF-8, NUL padded
    40     32    version          UTF-8, NUL padded
    72     4     payload_length
    76     4     payload_crc32    zlib.crc32 of the payload
    80     4     header_crc32     zlib.crc32 of bytes 0..79

The payload is a zip archive of the stub's folder (entry module, DBC, ``manifest.json``) with fixed
timestamps, so the same folder always builds the same bytes. The emulated MCU boots it with
``zipimport``; a real MCU's image would carry machine code in the same header.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

MAGIC = b"HILF"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHH32s32sIII")
FIELD_LEN = 32
ERASED = b"\xff" * 4


class ImageError(ValueError):
    """The bytes are not a valid image; the message says what was expected and what came."""


@dataclass(frozen=True)
class Image:
    name: str
    version: str
    payload: bytes
    suffix = ".hilfw"

    def to_bytes(self) -> bytes:
        return pack_header(self.name, self.version, self.payload) + self.payload

    @property
    def crc32(self) -> int:
        return zlib.crc32(self.payload)

    def files(self) -> dict[str, bytes]:
        """The payload's archive members (ImageError when the payload is no archive)."""
        try:
            with zipfile.ZipFile(io.BytesIO(self.payload)) as zf:
                return {n: zf.read(n) for n in zf.namelist()}
        except zipfile.BadZipFile as exc:
            raise ImageError(f"the payload is not a firmware archive: {exc}") from None


@dataclass(frozen=True)
class RawImage:
    """Machine code for a real MCU, as the toolchain wrote it (``objcopy -O binary``): flashed byte
    for byte at the flash method's address. Nothing inside names its version: it is the stack's."""

    name: str
    version: str
    data: bytes
    suffix = ".bin"

    def to_bytes(self) -> bytes:
        return self.data


def pack_header(name: str, version: str, payload: bytes) -> bytes:
    fields = [_field("name", name), _field("version", version)]
    head = HEADER.pack(MAGIC, FORMAT_VERSION, HEADER.size, *fields, len(payload), zlib.crc32(payload), 0)
    return head[:-4] + struct.pack("<I", zlib.crc32(head[:-4]))


def _field(what: str, text: str) -> bytes:
    raw = text.encode()
    if not raw or len(raw) > FIELD_LEN or b"\0" in raw:
        raise ImageError(f"image {what} must be 1..{FIELD_LEN} bytes of UTF-8 without NUL, got {text!r}")
    return raw.ljust(FIELD_LEN, b"\0")


def parse(data: bytes) -> Image:
    """Verify ``data`` (an image, possibly followed by erased flash) and return it.

    Raises :class:`ImageError` saying why the image cannot boot: empty flash, bad magic, unknown
    format, header CRC, truncated payload, payload CRC.
    """
    if len(data) < HEADER.size:
        raise ImageError(f"truncated: {len(data)} bytes, a header needs {HEADER.size}")
    magic, fmt, hsize, name, version, length, crc, hcrc = HEADER.unpack_from(data)
    if magic == ERASED:
        raise ImageError("no image: flash is erased (0xFF) at the image address")
    if magic != MAGIC:
        raise ImageError(f"bad magic: expected {MAGIC!r}, got {magic!r}")
    if fmt != FORMAT_VERSION or hsize != HEADER.size:
        raise ImageError(f"unsupported format: expected version {FORMAT_VERSION} with an {HEADER.size}-byte "
                         f"header, got version {fmt} with {hsize} bytes")
    got_hcrc = zlib.crc32(data[:HEADER.size - 4])
    if got_hcrc != hcrc:
        raise ImageError(f"header CRC32 mismatch: header says {hcrc:#010x}, header bytes give {got_hcrc:#010x}")
    payload = data[HEADER.size:HEADER.size + length]
    if len(payload) != length:
        raise ImageError(f"truncated payload: header says {length} bytes, only {len(payload)} present")
    got = zlib.crc32(payload)
    if got != crc:
        raise ImageError(f"payload CRC32 mismatch: header says {crc:#010x}, payload gives {got:#010x}")
    return Image(name.rstrip(b"\0").decode(), version.rstrip(b"\0").decode(), bytes(payload))


def image_length(data: bytes) -> int:
    """Total length (header + payload) that the header at the start of ``data`` announces."""
    return HEADER.size + HEADER.unpack_from(data)[5]
