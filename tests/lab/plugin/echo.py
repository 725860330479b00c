"""A tiny HPC component: answers every 0x100 frame on 'chassis' with a 0x200 frame, same payload."""

import can

from hil.buses import bus_from_env

bus = bus_from_env("chassis")
print("echo ready", flush=True)
for msg in bus:
    if msg.arbitration_id == 0x100:
        bus.send(can.Message(arbitration_id=0x200, data=msg.data, is_extended_id=False))
