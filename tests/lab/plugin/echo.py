"""A tiny HPC component: answers every 0x100 frame on 'chassis' with a frame of the same payload,
on id 0x200 or the ``reply_id`` of its config (HIL_CONFIG)."""

import json
import os

import can

from hil.buses import bus_from_env

reply_id = json.loads(os.environ.get("HIL_CONFIG", "{}")).get("reply_id", 0x200)
bus = bus_from_env("chassis")
print("echo ready", flush=True)
for msg in bus:
    if msg.arbitration_id == 0x100:
        bus.send(can.Message(arbitration_id=reply_id, data=msg.data, is_extended_id=False))
