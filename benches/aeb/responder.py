"""Calibration responder (runs on the HPC): the outside truth hil's latencies are checked against.

A plain python-can program that knows nothing of hil but the two variables every HPC component
gets: ``HIL_BUSES`` (JSON: bus name -> ``can.Bus`` keyword arguments) and ``HIL_CONFIG`` (JSON).
It answers every frame 0x500 with 0x580 carrying the same payload, exactly ``delay_us`` after its
``recv()`` returned (sleeps, then spins the last stretch), and logs for every frame, on stdout::

    responder: frame COUNTER stamp_s=T wait_ns=W recv_ns=R send_ns=S

``T`` is the stimulus frame's timestamp as the bus gave it (its end of frame, in python-can's
convention: Unix seconds, written exactly; the recording's ``epoch_offset_ns`` maps it onto the
run clock), ``W``
when it called the ``recv()`` that returned the frame (later than ``T`` when it was still busy
with earlier frames: then the frame waited for it, not for the bus), ``R`` when ``recv()``
returned and ``S`` when it called ``send()`` (``time.monotonic_ns()``: the run clock every process
of a run shares). The log line is written after the answer is sent.
"""

import json
import os
import sys
import time

import can

SPIN_NS = 500_000  # the last stretch of the delay is spun, not slept


def main() -> int:
    cfg = {"bus": "chassis", "delay_us": 0, **json.loads(os.environ.get("HIL_CONFIG", "{}"))}
    bus = can.Bus(**json.loads(os.environ["HIL_BUSES"])[cfg["bus"]])
    delay_ns = int(cfg["delay_us"] * 1000)
    answer = can.Message(arbitration_id=0x580, is_extended_id=False, data=bytes(8))
    print(f"responder: ready, delay {delay_ns / 1e6:g} ms", flush=True)
    try:
        while True:
            waiting = time.monotonic_ns()
            msg = bus.recv(1.0)
            received = time.monotonic_ns()
            if msg is None or msg.arbitration_id != 0x500 or msg.is_error_frame or msg.is_remote_frame:
                continue
            due = received + delay_ns
            if due - time.monotonic_ns() > SPIN_NS:
                time.sleep((due - time.monotonic_ns() - SPIN_NS) / 1e9)
            while (sent := time.monotonic_ns()) < due:
                pass
            answer.data = msg.data
            answer.dlc = msg.dlc
            bus.send(answer)
            print(f"responder: frame {msg.data[0]} stamp_s={msg.timestamp!r} wait_ns={waiting} "
                  f"recv_ns={received} send_ns={sent}", flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        bus.shutdown()


if __name__ == "__main__":
    sys.exit(main())
