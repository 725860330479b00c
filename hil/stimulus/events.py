"""What a stimulus source yields: CAN frames and serial byte chunks, each at a log time in ns.

Log time is the source's own clock (whatever epoch the file uses); the timeline shifts it onto the
run clock. ``channel`` is the log's channel name as a string (``"1"`` for ASC channel 1, ``"can0"``
for candump, the bus name for an MCAP recording, ``""`` when the format has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import can

from hil.recording.frames import (FLAG_BRS, FLAG_ERROR, FLAG_ESI, FLAG_EXTENDED, FLAG_FD, FLAG_REMOTE,
                                  message_flags)

CLASSIC_MAX = 8
FD_LENGTHS = frozenset((0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64))


@dataclass(slots=True)
class CanEvent:
    t_ns: int
    channel: str
    id: int
    flags: int
    data: bytes

    @classmethod
    def from_message(cls, msg: can.Message, t_ns: int) -> CanEvent:
        return cls(t_ns, "" if msg.channel is None else str(msg.channel), msg.arbitration_id,
                   message_flags(msg), bytes(msg.data))

    def to_message(self) -> can.Message:
        f = self.flags
        return can.Message(arbitration_id=self.id, data=self.data, is_extended_id=bool(f & FLAG_EXTENDED),
                           is_remote_frame=bool(f & FLAG_REMOTE), is_error_frame=bool(f & FLAG_ERROR),
                           is_fd=bool(f & FLAG_FD), bitrate_switch=bool(f & FLAG_BRS),
                           error_state_indicator=bool(f & FLAG_ESI), dlc=len(self.data),
                           check=False)

    def problem(self) -> str | None:
        """Why this frame cannot be put on a bus, or None."""
        limit = 0x1FFFFFFF if self.flags & FLAG_EXTENDED else 0x7FF
        if not 0 <= self.id <= limit:
            kind = "extended" if self.flags & FLAG_EXTENDED else "standard"
            return f"expected a {kind} id ≤ {limit:#x}, got {self.id:#x}"
        n = len(self.data)
        if self.flags & FLAG_FD:
            if n not in FD_LENGTHS:
                return f"expected a CAN FD payload length in {sorted(FD_LENGTHS)}, got {n}"
        elif n > CLASSIC_MAX:
            return f"expected a classic CAN payload of ≤ 8 bytes, got {n}"
        return None


@dataclass(slots=True)
class SerialEvent:
    t_ns: int
    channel: str
    data: bytes


Event = CanEvent | SerialEvent

