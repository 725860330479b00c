"""What a stimulus source yields: CAN frames, serial byte chunks and UDP datagrams, each at a log time in ns.

Log time is the source's own clock (whatever epoch the file uses); the timeline shifts it onto the
run clock. ``channel`` is the log's channel name as a string (``"1"`` for ASC channel 1, ``"can0"``
for candump, the bus name for an MCAP recording, ``""`` when the format has none). A remote frame
carries its DLC as that many zero bytes (the injector sends ``dlc=len(data)``).

Readers raise :class:`RecordError` for a record they cannot account for; the reader driver adds the
file name.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass

import can

from hil.canframe import FD_LENGTHS, FLAG_BRS, FLAG_ERROR, FLAG_ESI, FLAG_EXTENDED, FLAG_FD, FLAG_REMOTE, message_flags, to_message

CLASSIC_MAX = 8
MAX_LOG_NS = 1 << 62  # log times are in [0, 2**62) ns (146 years): room for offsets in int64
NS = decimal.Decimal(1_000_000_000)


class RecordError(Exception):
    """A record of a stimulus file that is not what its format says: ``where`` names the record
    ("line 12", "object 7"), ``str()`` what was expected and what came."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


def log_ns(text: str, unit: decimal.Decimal = NS) -> int:
    """A log time written as a decimal number of ``unit`` (ns per unit; seconds by default) → ns,
    exact, rounded half-even; ValueError for a sign, NaN, infinity or a time beyond 146 years."""
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"expected a time, got {text[:40]!r}") from None
    if not value.is_finite() or value.is_signed() or value * unit >= MAX_LOG_NS:
        raise ValueError(f"expected a time between 0 and {MAX_LOG_NS / 1e9:.3g} s, got {text[:40]!r}")
    return int((value * unit).to_integral_value(decimal.ROUND_HALF_EVEN))


@dataclass(slots=True)
class CanEvent:
    t_ns: int
    channel: str
    id: int
    flags: int
    data: bytes

    @classmethod
    def from_message(cls, msg: can.Message, t_ns: int) -> CanEvent:
        data = bytes(msg.dlc) if msg.is_remote_frame else bytes(msg.data)
        return cls(t_ns, "" if msg.channel is None else str(msg.channel), msg.arbitration_id,
                   message_flags(msg), data)

    def to_message(self) -> can.Message:
        return to_message(self.id, self.flags, self.data, dlc=len(self.data))

    def problem(self) -> str | None:
        """Why this frame cannot be put on a bus as it stands, or None."""
        f, n = self.flags, len(self.data)
        limit = 0x1FFFFFFF if f & (FLAG_EXTENDED | FLAG_ERROR) else 0x7FF
        if not 0 <= self.id <= limit:
            kind = "an error class" if f & FLAG_ERROR else "an extended id" if f & FLAG_EXTENDED else "a standard id"
            return f"expected {kind} ≤ {limit:#x}, got {self.id:#x}"
        if f & FLAG_FD:
            if f & FLAG_REMOTE:
                return "a CAN FD frame cannot be a remote frame"
            if n not in FD_LENGTHS:
                return f"expected a CAN FD payload length in {list(FD_LENGTHS)}, got {n}"
        else:
            if f & (FLAG_BRS | FLAG_ESI):
                return "bit rate switch / error state flags on a classic frame (they need CAN FD)"
            if n > CLASSIC_MAX:
                return f"expected a classic CAN payload of ≤ 8 bytes, got {n}"
        return None


@dataclass(slots=True)
class SerialEvent:
    t_ns: int
    channel: str
    data: bytes


@dataclass(slots=True)
class PacketEvent:
    """A UDP datagram: ``channel`` is its original destination (``"ADDRESS:PORT"``); ``to`` is the
    (address, port) on the rig the timeline aims it at (None until then)."""

    t_ns: int
    channel: str
    data: bytes
    to: tuple[str, int] | None = None


Event = CanEvent | SerialEvent | PacketEvent
