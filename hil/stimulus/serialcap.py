"""The serial capture format: timestamped byte chunks, one per line, plain text.

::

    # hil serial capture v1
    # seconds  channel  bytes (hex, no spaces)
    0.000000 console 48656c6c6f0d0a
    0.012500 console 4f4b0d0a

A line is ``SECONDS CHANNEL HEX``: a decimal log time in seconds (any epoch, non-decreasing per channel), a
channel name (mapped to a rig serial bus like a CAN log channel) and the chunk's bytes as an even
number of hex digits. Lines starting with ``#`` and blank lines are ignored. The file must end with a
line break (a missing one means the capture was cut off).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hil.stimulus.events import SerialEvent, log_ns

HEADER = "# hil serial capture v1\n"


def parse_line(line: str) -> SerialEvent:
    """One data line → event; ValueError saying what was expected otherwise."""
    parts = line.split()
    if len(parts) != 3:
        raise ValueError(f"expected 'SECONDS CHANNEL HEX', got {len(parts)} field(s): {line.strip()[:60]!r}")
    seconds, channel, hexdata = parts
    t = log_ns(seconds)
    try:
        data = bytes.fromhex(hexdata)
    except ValueError:
        raise ValueError(f"expected bytes as an even number of hex digits, got {hexdata[:40]!r}") from None
    return SerialEvent(t, channel, data)


def write(path: Path, events: Iterable[SerialEvent]) -> None:
    """Write a serial capture (what :func:`parse_line` reads back)."""
    with open(path, "w") as f:
        f.write(HEADER)
        for e in events:
            f.write(f"{e.t_ns // 1_000_000_000}.{e.t_ns % 1_000_000_000:09d} {e.channel} {e.data.hex()}\n")
