"""A child process that opens its buses from HIL_BUSES, as an emulated target would.

    child.py serial NAME    read lines from the serial bus, answer each upper-cased, until "quit"
    child.py can NAME       answer every CAN frame with id + 1 and the same data, until id 0x7FF
"""

import sys

import can

from hil.buses import bus_from_env


def main(kind: str, name: str) -> None:
    bus = bus_from_env(name, **({"timeout": 60} if kind == "serial" else {}))
    print("ready", flush=True)
    if kind == "serial":
        while (line := bus.readline()) and line != b"quit\n":
            bus.write(line.upper())
        bus.close()
        return
    while (msg := bus.recv(60)) is not None and msg.arbitration_id != 0x7FF:
        bus.send(can.Message(arbitration_id=msg.arbitration_id + 1, data=msg.data, is_extended_id=False))
    bus.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
