"""An independent, low-overhead sink for CAN frames sent through python-can, stamped by the kernel.

:class:`SinkBus` is a python-can bus whose frames are UDP datagrams to 127.0.0.1; :class:`Sink`
runs the receiving end in its own process (``python udp_sink.py``), where the kernel stamps each
datagram as it arrives (``SO_TIMESTAMPNS``; on loopback that is inside the sender's ``send``), so
when the sink process gets to read does not matter and measuring costs the sender nothing. Any
process can open the bus by interface name once :func:`plugin_path` is on its ``PYTHONPATH`` (an
entry point in the ``can.interface`` group, as python-can finds its plugins). Used by
``replay_fidelity.py`` and by the tests of the injector's real-bus path.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import can

INTERFACE = "hil-bench-sink"
FRAME = struct.Struct("<IB")  # id, length; then the data (a frame's first two bytes number it)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
HERE = Path(__file__).resolve().parent


class SinkBus(can.BusABC):
    """A python-can bus whose frames are UDP datagrams to ``channel`` ("127.0.0.1:PORT"). With
    ``receive_own_messages`` each sent frame comes back from ``recv`` as its echo, as an adapter
    gives it: stamped at its end of frame (when ``send`` returned plus the frame's duration at
    ``bitrate``, on ``time.monotonic()``), and not before that time."""

    def __init__(self, channel: str, receive_own_messages: bool = False, bitrate: int = 500_000, **kwargs):
        from hil.simbus.wire import WireModel

        host, port = channel.rsplit(":", 1)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.connect((host, int(port)))
        self._echo = receive_own_messages
        self._echoes: queue.SimpleQueue = queue.SimpleQueue()
        self._wire = WireModel(bitrate)
        self.channel_info = f"UDP sink {channel}"
        super().__init__(channel=channel, **kwargs)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        data = bytes(msg.data)
        self._sock.send(FRAME.pack(msg.arbitration_id, len(data)) + data)
        if self._echo:
            eof = time.monotonic() + self._wire.timing(msg.arbitration_id, 0, len(data), data)[1] / 1e9
            self._echoes.put(can.Message(timestamp=eof, arbitration_id=msg.arbitration_id, data=data,
                                         is_extended_id=msg.is_extended_id, is_rx=False))

    def _recv_internal(self, timeout: float | None):
        try:
            echo = self._echoes.get(timeout=timeout)
        except queue.Empty:
            return None, False
        if (wait := echo.timestamp - time.monotonic()) > 0:
            time.sleep(wait)  # an adapter reports a frame once it is on the wire
        return echo, False

    def shutdown(self) -> None:
        self._sock.close()
        super().shutdown()


class Sink:
    """The receiving end, in its own process; :meth:`finish` returns what arrived."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.channel = f"127.0.0.1:{self.port}"

    def finish(self) -> list[tuple[int, int, bytes]]:
        """Every frame that arrived, in order: (arrival on the run clock, id, data)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"END", ("127.0.0.1", self.port))
        return [(t, i, bytes.fromhex(d)) for t, i, d in json.loads(self.proc.communicate(timeout=60)[0])]


def plugin_path(folder: Path) -> str:
    """A ``PYTHONPATH`` (the current one, extended) under which :class:`SinkBus` is the python-can
    interface :data:`INTERFACE`; ``folder`` (empty) receives the entry point's metadata."""
    info = folder / "hil_bench_sink-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hil-bench-sink\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[can.interface]\n{INTERFACE} = udp_sink:SinkBus\n")
    return os.pathsep.join([str(folder), str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])


def _serve() -> None:
    """Read datagrams until ``END``; print every frame with its kernel arrival on the run clock (the
    kernel stamps on the wall clock: mapped through the two clocks, read as the sink starts and
    ends and interpolated between, in case the wall clock is being slewed)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    first = (time.clock_gettime_ns(time.CLOCK_REALTIME), time.monotonic_ns())
    got = []
    while True:
        data, anc, _, _ = sock.recvmsg(128, socket.CMSG_SPACE(16))
        if data == b"END":
            break
        sec, nsec = next(struct.unpack("qq", d[:16]) for _, kind, d in anc if kind == SO_TIMESTAMPNS)
        can_id, length = FRAME.unpack_from(data)
        got.append((sec * 1_000_000_000 + nsec, can_id, data[FRAME.size:FRAME.size + length].hex()))
    last = (time.clock_gettime_ns(time.CLOCK_REALTIME), time.monotonic_ns())
    slope = (last[1] - first[1]) / max(1, last[0] - first[0])  # run-clock ns per wall-clock ns
    print(json.dumps([(first[1] + round((t - first[0]) * slope), i, d) for t, i, d in got]))


if __name__ == "__main__":
    _serve()
