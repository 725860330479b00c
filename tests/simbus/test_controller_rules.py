"""simcan refuses what a CAN controller would: frames no bus can carry, and node settings that
contradict the bus (python-can's errors, so any program sees them as it would from hardware)."""

from __future__ import annotations

import re

import can
import pytest


def test_simcan_refuses_what_no_controller_sends_and_settings_that_contradict_the_bus(rig_buses):
    with rig_buses(chassis={"bitrate": 500_000}, fdbus={"fd": True, "bitrate": 500_000, "data_bitrate": 2_000_000}) as buses:
        classic = buses.can_config("chassis")["channel"]
        fd = buses.can_config("fdbus")["channel"]
        with can.Bus(interface="simcan", channel=classic, bitrate=500_000, fd=False) as bus:
            for msg, why in [
                (can.Message(arbitration_id=0x800, is_extended_id=False), "standard id of at most 0x7FF, got 0x800"),
                (can.Message(arbitration_id=0x20000000, is_extended_id=True, check=False),
                 "extended id of at most 29 bits, got 0x20000000"),
                (can.Message(arbitration_id=1, data=bytes(4), dlc=2, check=False),
                 "at most 2 data bytes (the frame's DLC), got 4"),
                (can.Message(arbitration_id=1, is_fd=True, data=bytes(12)), "CAN FD frame cannot go on this classic"),
            ]:
                with pytest.raises(can.CanOperationError, match=re.escape(why)):
                    bus.send(msg)
        with can.Bus(interface="simcan", channel=fd) as bus:
            with pytest.raises(can.CanOperationError, match="CAN FD has no remote frames"):
                bus.send(can.Message(arbitration_id=1, is_fd=True, is_remote_frame=True, dlc=2, check=False))
        for channel, kw, why in [(classic, {"bitrate": 250_000}, "bitrate=250000 but the bus has bitrate=500000"),
                                 (classic, {"fd": True}, "fd=True but the bus has fd=False"),
                                 (fd, {"fd": False}, "fd=False but the bus has fd=True"),
                                 (fd, {"data_bitrate": 4_000_000},
                                  "data_bitrate=4000000 but the bus has data_bitrate=2000000")]:
            with pytest.raises(can.CanInitializationError, match=re.escape(why)):
                can.Bus(interface="simcan", channel=channel, **kw)
