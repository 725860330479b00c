"""A CAN node in its own process, for back-to-back tests: joins a bus from HIL_BUSES and either sends
or receives frames, printing JSON lines on stdout.

    node.py send BUS FILE    send the frames listed in FILE (JSON: [[id, ext, fd, brs, hexdata], ...])
    node.py recv BUS N       print "ready", then one JSON line per received frame until N arrived
"""

import json
import sys

import can

from hil.buses import bus_from_env
from hil.clock import frame_ns


def main(mode: str, name: str, arg: str) -> None:
    bus = bus_from_env(name)
    try:
        if mode == "send":
            for can_id, ext, fd, brs, data in json.loads(open(arg).read()):
                bus.send(can.Message(arbitration_id=can_id, is_extended_id=ext, is_fd=fd, bitrate_switch=brs,
                                     data=bytes.fromhex(data)))
            print("sent", flush=True)
        else:
            print("ready", flush=True)
            for _ in range(int(arg)):
                m = bus.recv(60)
                if m is None:
                    break
                print(json.dumps([m.arbitration_id, m.is_extended_id, m.is_fd, m.bitrate_switch, m.data.hex(),
                                  frame_ns(m)]), flush=True)
    finally:
        bus.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
