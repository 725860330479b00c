"""A component's ``config:`` written into a Cortex-M image's configuration block at deploy.

Firmware declares its parameters in one block in flash (``hil_config.h``): magic ``HCFG``, format
version, entry count, then per entry a 24-byte NUL-padded name, a kind (duration in µs, integer,
float) and the default value. At deploy, the values of the keys a component's ``config:`` names
are written into that block before the image is flashed, so every bench runs the same image with
its own parameters, the board gets the same bytes as the emulator, and a misspelt key or a value
of the wrong kind is refused with the firmware's own list of keys. Nothing else in the image moves.
"""

from __future__ import annotations

import struct
from typing import Any

from hil.spec.common import parse_duration_ns

MAGIC = b"HCFG"
VERSION = 1
HEADER = struct.Struct("<4sHH")
ENTRY = struct.Struct("<24sI4s")
DURATION_US, INTEGER, FLOAT = 1, 2, 3
KIND_NAMES = {DURATION_US: "a duration (5ms, 0.2s)", INTEGER: "an integer", FLOAT: "a number"}


class ConfigError(ValueError):
    """The config does not fit the image's block; the message names the key and what was expected."""


def find_block(image: bytes) -> int | None:
    """Offset of the configuration block (the first word-aligned ``HCFG`` with a known version)."""
    at = image.find(MAGIC)
    while at >= 0:
        if at % 4 == 0 and HEADER.unpack_from(image, at)[1] == VERSION:
            return at
        at = image.find(MAGIC, at + 1)
    return None


def entries(image: bytes) -> dict[str, tuple[int, int]]:
    """The block's parameters: name → (kind, offset of its value in the image)."""
    at = find_block(image)
    if at is None:
        return {}
    _, _, count = HEADER.unpack_from(image, at)
    out = {}
    for i in range(count):
        off = at + HEADER.size + i * ENTRY.size
        name, kind, _ = ENTRY.unpack_from(image, off)
        out[name.rstrip(b"\0").decode(errors="replace")] = (kind, off + 28)
    return out


def apply(image: bytes, config: dict[str, Any], what: str = "the image") -> bytes:
    """``image`` with ``config``'s values written into its block (unchanged when config is empty)."""
    if not config:
        return image
    known = entries(image)
    if not known:
        raise ConfigError(f"{what} has no hil configuration block (hil_config.h), so config "
                          f"{', '.join(sorted(config))} cannot reach it")
    out = bytearray(image)
    for key, value in config.items():
        if key not in known:
            raise ConfigError(f"config key {key!r} is not a parameter of {what}; it has: {', '.join(sorted(known))}")
        kind, offset = known[key]
        out[offset:offset + 4] = _encode(key, kind, value)
    return bytes(out)


def _encode(key: str, kind: int, value: Any) -> bytes:
    if kind not in KIND_NAMES:
        raise ConfigError(f"config key {key!r}: the firmware declares an unknown kind {kind}")
    packed = None if isinstance(value, bool) else _pack(kind, value)
    if packed is None:
        raise ConfigError(f"config key {key!r}: expected {KIND_NAMES[kind]}, got {value!r}")
    return packed


def _pack(kind: int, value: Any) -> bytes | None:
    if kind == DURATION_US:
        try:
            us = parse_duration_ns(value) // 1000
        except ValueError:
            return None
        return struct.pack("<I", us) if us < 2**32 else None
    if kind == INTEGER:
        return struct.pack("<i", value) if isinstance(value, int) and -2**31 <= value < 2**31 else None
    return struct.pack("<f", value) if isinstance(value, (int, float)) else None
