"""Seed → key algorithms for UDS SecurityAccess, named as in the rig's ``flash.key``.

``xor:SECRET`` XORs the seed with the secret (an integer, big-endian, repeated over the seed);
``module:function`` imports ``function(level, seed) -> key`` for an OEM algorithm. The ECU side
(the emulated MCU) and the tester (the UDS flash client) resolve the same name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from hil.errors import FlashError

KeyFunction = Callable[[int, bytes], bytes]


def key_function(spec: str) -> KeyFunction:
    kind, _, arg = spec.partition(":")
    if kind == "xor":
        try:
            secret = int(arg, 0)
        except ValueError:
            raise FlashError(f"key algorithm {spec!r}: expected 'xor:0x5A5A5A5A', got secret {arg!r}") from None
        raw = secret.to_bytes(max(1, (secret.bit_length() + 7) // 8), "big")
        return lambda level, seed: bytes(b ^ raw[i % len(raw)] for i, b in enumerate(seed))
    try:
        return getattr(importlib.import_module(kind), arg)
    except (ImportError, AttributeError, ValueError) as exc:
        raise FlashError(f"key algorithm {spec!r}: expected 'xor:SECRET' or an importable "
                         f"'module:function', got {type(exc).__name__}: {exc}") from None
