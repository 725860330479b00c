"""A CAN frame's kind as hil keeps it: one byte of flag bits, and the one conversion between those
bits and python-can's ``Message``.

The same bits travel in simbus's FRAME records, the recording's columns and the stimulus events,
so a frame's kind is never translated on its way from the wire to the analysis. The CAN FD length
table is python-can's (``can.util.CAN_FD_DLC``, tested equal), written out because the simbus
broker and the spec never import python-can (it costs them 0.6 s at start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import can

FLAG_EXTENDED = 0x01
FLAG_REMOTE = 0x02
FLAG_ERROR = 0x04
FLAG_FD = 0x08
FLAG_BRS = 0x10
FLAG_ESI = 0x20
FLAG_TX = 0x40  # sent by the controller (the injector's echo); on simbus's wire: the echo of a node's own frame

FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)  # payload length by DLC code


def message_flags(msg: can.Message) -> int:
    """python-can ``Message`` booleans → FLAG_* bits."""
    return ((FLAG_EXTENDED if msg.is_extended_id else 0) | (FLAG_REMOTE if msg.is_remote_frame else 0)
            | (FLAG_ERROR if msg.is_error_frame else 0) | (FLAG_FD if msg.is_fd else 0)
            | (FLAG_BRS if msg.bitrate_switch else 0) | (FLAG_ESI if msg.error_state_indicator else 0))


def to_message(can_id: int, flags: int, data: bytes, **fields: Any) -> can.Message:
    """FLAG_* bits → a python-can ``Message`` of ``data``, unchecked (a log may hold what a bus
    refuses; the caller checks); ``fields`` sets the rest (``timestamp``, ``channel``, ``dlc``...)."""
    import can

    return can.Message(arbitration_id=can_id, data=data, is_extended_id=bool(flags & FLAG_EXTENDED),
                       is_remote_frame=bool(flags & FLAG_REMOTE), is_error_frame=bool(flags & FLAG_ERROR),
                       is_fd=bool(flags & FLAG_FD), bitrate_switch=bool(flags & FLAG_BRS),
                       error_state_indicator=bool(flags & FLAG_ESI), check=False, **fields)
