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

An image is untrusted input: its name and version must be plain file-name text (they name the file
a target writes it to), and its payload is opened only within :class:`PayloadLimits` — member
count, unpacked size and compression ratio checked on the zip's directory before a byte is
inflated; plain relative names only, regular files only, no duplicates, no encryption.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

from hil.files import MiB, name_problem, size_text

MAGIC = b"HILF"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHH32s32sIII")
FIELD_LEN = 32
ERASED = b"\xff" * 4
FILE_LIMIT = 64 * MiB  # an image file (raw or hil); no microcontroller's flash is larger
_END = struct.Struct("<4s4H2LH")  # zip end of central directory record
_DIRECTORY_ENTRY = 46 + 512  # a central directory entry, name and extra fields included, at most


@dataclass(frozen=True)
class PayloadLimits:
    """What an image's payload archive may hold."""

    members: int = 1024
    size: int = 64 * MiB  # unpacked, all members together
    ratio: int = 200  # unpacked : packed, once the payload unpacks to more than ratio_floor
    ratio_floor: int = 1 * MiB


PAYLOAD = PayloadLimits()


class ImageError(ValueError):
    """The bytes are not a valid image; the message says what was expected and what came."""


def _check_labels(name: str, version: str) -> None:
    """Name and version become a file name (``NAME-VERSION.hilfw``): they must be plain text."""
    for what, text in (("name", name), ("version", version)):
        if text and (problem := name_problem(text)):
            raise ImageError(f"image {what} {text!r} {problem}")


@dataclass(frozen=True)
class Image:
    name: str
    version: str
    payload: bytes
    suffix = ".hilfw"

    def __post_init__(self) -> None:
        _check_labels(self.name, self.version)

    def to_bytes(self) -> bytes:
        return pack_header(self.name, self.version, self.payload) + self.payload

    @property
    def crc32(self) -> int:
        return zlib.crc32(self.payload)

    def files(self, limits: PayloadLimits = PAYLOAD) -> dict[str, bytes]:
        """The payload's archive members, checked (ImageError says what is wrong)."""
        _check_directory(self.payload, limits)
        try:
            with zipfile.ZipFile(io.BytesIO(self.payload)) as zf:
                _check_members(zf.infolist(), len(self.payload), limits)
                return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
        except ImageError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
            raise ImageError(f"the payload is not a firmware archive: {exc}") from None


def _check_directory(payload: bytes, limits: PayloadLimits) -> None:
    """The zip's end record announces at most ``limits.members`` members in a directory of their
    size, so parsing the directory is bounded too. ZIP64 is never needed by a payload."""
    at = len(payload) - _END.size  # where zipfile looks first: a record without comment
    if at < 0 or not payload.startswith(b"PK\x05\x06", at) or payload[-2:] != b"\0\0":
        at = payload.rfind(b"PK\x05\x06", max(0, len(payload) - _END.size - 0xFFFF))
    if at < 0 or at + _END.size > len(payload):
        return  # zipfile says it is no archive
    entries, size = _END.unpack_from(payload, at)[4:6]
    if entries == 0xFFFF or size == 0xFFFFFFFF:
        raise ImageError("the payload is a ZIP64 archive; a firmware payload is a plain zip")
    if entries > limits.members or size > limits.members * _DIRECTORY_ENTRY:
        raise ImageError(f"the payload announces {entries:,} members in {size_text(size)} of directory; "
                         f"at most {limits.members:,} members are accepted")


def _check_members(infos: list[zipfile.ZipInfo], packed: int, limits: PayloadLimits) -> None:
    if len(infos) > limits.members:
        raise ImageError(f"the payload holds {len(infos):,} members; at most {limits.members:,} are accepted")
    seen: set[str] = set()
    for info in infos:
        if problem := _member_problem(info):
            raise ImageError(f"payload member {info.filename!r} {problem}; refused")
        if info.filename in seen:
            raise ImageError(f"payload member {info.filename!r} appears twice; refused")
        seen.add(info.filename)
    total = sum(i.file_size for i in infos)
    most = min(limits.size, max(limits.ratio * packed, limits.ratio_floor))
    if total > most:
        raise ImageError(f"the payload unpacks to {size_text(total)}; a payload of {size_text(packed)} may "
                         f"unpack to at most {size_text(most)} (limits: {limits.ratio}× its size above "
                         f"{size_text(limits.ratio_floor)}, {size_text(limits.size)} in all)")


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a payload member is not a plain file (or folder) with a plain relative name, or None."""
    name = info.filename.removesuffix("/") if info.is_dir() else info.filename
    if name.startswith("/") or "\\" in name:
        return "is an absolute path" if name.startswith("/") else "contains a backslash"
    for part in name.split("/"):
        if part == "..":
            return "climbs out with '..'"
        if problem := name_problem(part):
            return f"has a part that {problem}"
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: not said, a plain file
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a symbolic link" if kind == stat.S_IFLNK else "is a special file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"uses compression method {info.compress_type} (only stored and deflated are read)"
    return None


@dataclass(frozen=True)
class RawImage:
    """Machine code for a real MCU, as the toolchain wrote it (``objcopy -O binary``): flashed byte
    for byte at the flash method's address. Nothing inside names its version: it is the stack's."""

    name: str
    version: str
    data: bytes
    suffix = ".bin"

    def __post_init__(self) -> None:
        _check_labels(self.name, self.version)

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
    try:
        labels = name.rstrip(b"\0").decode(), version.rstrip(b"\0").decode()
    except UnicodeDecodeError as exc:
        raise ImageError(f"the header's name or version is not UTF-8 ({exc.reason})") from None
    return Image(*labels, bytes(payload))


def image_length(data: bytes) -> int:
    """Total length (header + payload) that the header at the start of ``data`` announces."""
    return HEADER.size + HEADER.unpack_from(data)[5]
