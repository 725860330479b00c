"""hil's frame flag bits and python-can's Message: one conversion both ways; FD lengths as python-can's."""

from __future__ import annotations

import itertools

import can
import can.util

from hil.canframe import FD_LENGTHS, FLAG_BRS, FLAG_ESI, FLAG_FD, FLAG_REMOTE, message_flags, to_message
from hil.simbus.wire import fd_dlc


def test_the_fd_length_table_is_python_cans():
    assert FD_LENGTHS == tuple(can.util.CAN_FD_DLC)
    assert [fd_dlc(n) for n in range(65)] == [can.util.len2dlc(n) for n in range(65)]


def test_every_flag_combination_survives_a_message_and_back():
    for bits in itertools.product((0, 1), repeat=6):
        flags = sum(bit << i for i, bit in enumerate(bits))
        msg = to_message(0x123, flags, b"\x01\x02", timestamp=1.5, channel="chassis")
        assert message_flags(msg) == flags, hex(flags)
        data = b"" if flags & FLAG_REMOTE else b"\x01\x02"  # python-can keeps no payload for a remote frame
        assert (msg.arbitration_id, bytes(msg.data), msg.timestamp, msg.channel) == (0x123, data, 1.5, "chassis")
    fd = to_message(0x10, FLAG_FD | FLAG_BRS | FLAG_ESI, bytes(12))
    assert fd.is_fd and fd.bitrate_switch and fd.error_state_indicator and fd.dlc == 12
