"""Emulated USB-CAN adapters: the real wire protocols, bridged onto an emulated bus as a simcan node.

A rig reaches such a bus exactly as a lab reaches the real adapter — ``interface: slcan`` with a
device path, ``interface: socketcand`` with a server — so python-can's own drivers, the
:class:`~hil.clock.AdapterClock` and the injector's sleep-and-spin path run as they run in a lab.

* **SLCAN** (LAWICEL, as CANable/CANtact-class firmware speaks it) on a pty: the device end is
  served here, the other end is linked at the rig's ``channel`` path. ``O``/``L``/``C`` open,
  listen-only, close; ``S0``–``S8`` (a bitrate other than the bus's is refused, like a node that
  would only make error frames); ``Y2``/``Y5`` data bitrates; ``V``/``v``/``N`` version, firmware,
  serial number; ``F`` status flags; ``Z0``/``Z1`` timestamps (16-bit milliseconds wrapping at
  60000, appended to each received frame); ``t``/``T``/``r``/``R`` and ``d``/``D``/``b``/``B``
  frames. ``\\r`` answers OK, BEL an error, ``z``/``Z`` a queued frame.
* **socketcand** on 127.0.0.1: ``< hi >``, ``< open CHANNEL >``, ``< rawmode >``, ``< send … >``,
  ``< echo >``, and every frame as ``< frame ID SEC.USEC DATA >`` stamped at its end of frame by
  the server's own clock (its wall clock, drifting). Each client is its own node, as each has its
  own raw socket on a real server. :class:`EchoProbe` is the host's side: the echo
  round trip to any socketcand server, which bounds the trip a frame takes after its stamp.

What makes real adapters hard is modelled: the adapter's oscillator drifts (``drift_ppm``), frames
reach the host in USB-style batches (``batch``, 1 ms frames by default: the first after a frame's
end), and the adapter gives the
host no echo of its own frames (neither device does). Run as ``python -m hil.buses.adapters
CONFIG.json``: one JSON line when ready (``channel`` path or ``port``), serving until SIGTERM or
until stdin closes (its parent died).
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Any
from collections.abc import Callable

VERSION = "V1013"  # hardware 10, software 13 (python-can's get_version parses two digits each)
FIRMWARE = "vhil-slcan-emulated"
SERIAL = "NHIL0"
OK, ERROR = b"\r", b"\a"
Z1_PERIOD_MS = 60_000
CODES = {"S0": 10_000, "S1": 20_000, "S2": 50_000, "S3": 100_000, "S4": 125_000, "S5": 250_000, "S6": 500_000,
         "S7": 750_000, "S8": 1_000_000}
DATA_CODES = {"Y2": 2_000_000, "Y5": 5_000_000}
OVERRUN = 0x08  # F status: data overrun (frames the host did not take in time were lost)
FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)
MAX_LINE = 200  # a command longer than any frame is garbage
FRAMES_AFTER_OK_S = 0.05  # socketcand: python-can reads "< ok >" alone, so frames wait a moment


class Oscillator:
    """The adapter's own clock: the run clock scaled by its drift, from its own epoch."""

    def __init__(self, drift_ppm: float, epoch_ns: int):
        self.rate = 1 + drift_ppm * 1e-6
        self.origin = time.monotonic_ns()
        self.epoch_ns = epoch_ns

    def ns(self, run_ns: int) -> int:
        return self.epoch_ns + round((run_ns - self.origin) * self.rate)


class Batches:
    """USB-style delivery: what the adapter has for the host leaves at the first batch boundary of
    the run clock after the adapter had it (a frame: its end of frame), or then with ``batch_ns``
    0; if this process woke later than that, at once (the host's lateness, not the model's).
    ``write`` returns False when the host is not reading and its buffer is full: the data is lost,
    as on a real adapter (an overrun)."""

    def __init__(self, batch_ns: int, write: Callable[[bytes], bool]):
        self.batch_ns = batch_ns
        self._write = write
        self._pending = bytearray()
        self._due: int | None = None
        self.overruns = 0

    def boundary(self, t_ns: int) -> int:
        """The batch that carries what the adapter had at ``t_ns`` leaves at this run-clock time."""
        return -(-t_ns // self.batch_ns) * self.batch_ns if self.batch_ns else t_ns

    def add(self, data: bytes, had_ns: int) -> None:
        due = self.boundary(had_ns)
        if self._due is not None and due > self._due:  # a batch this process was late to send goes first
            self.flush_due(self._due)
        self._pending += data
        if self._due is None:
            self._due = due

    def timeout(self, now_ns: int, idle: float) -> float:
        return idle if self._due is None else max(0.0, (self._due - now_ns) / 1e9)

    def flush_due(self, now_ns: int) -> None:
        if self._due is not None and now_ns >= self._due:
            if not self._write(bytes(self._pending)):
                self.overruns += 1
            self._pending.clear()
            self._due = None


def node(cfg: dict[str, Any], name: str):
    """A simcan node on the adapter's bus, without its own echo (the host gets none either)."""
    from hil.simbus.plugin import SimCanBus

    return SimCanBus(cfg["socket"], name=name)


def forward(bus: Any, batches: Batches, encode: Callable[[Any, int], bytes | None], lock: threading.Lock,
            stop: threading.Event) -> None:
    """The receive side: every frame on the bus, encoded with its end of frame (simcan's exact
    ``run_ns``: when the controller had it, not when this process woke to take it, a wake-up that
    is the host's and no real adapter's) and delivered in the batch after it."""
    from hil.clock import fine_timer_slack, frame_ns

    fine_timer_slack()  # a batch leaves at its boundary, not up to 50 µs after it

    while not stop.is_set():
        try:
            msg = bus.recv(batches.timeout(time.monotonic_ns(), 0.05))
        except Exception:  # the bus went down: the adapter ends, and the host sees its port go quiet
            stop.set()
            return
        with lock:
            if msg is not None and (text := encode(msg, eof := frame_ns(msg))) is not None:
                batches.add(text, eof)
            batches.flush_due(time.monotonic_ns())


# ---- SLCAN -------------------------------------------------------------------------------------

class Slcan:
    """The state of an SLCAN device and its answers to the host's commands."""

    def __init__(self, cfg: dict[str, Any], send: Callable[[Any], None]):
        self.bitrate: int | None = None
        self.data_bitrate: int | None = None
        self.bus_bitrate, self.bus_data_bitrate, self.fd = cfg["bitrate"], cfg.get("data_bitrate"), cfg.get("fd")
        self.open = False
        self.listen_only = False
        self.timestamps = False
        self.flags = 0
        self.refused: list[str] = []  # commands answered with BEL, for the adapter's log
        self.clock = Oscillator(cfg.get("drift_ppm", 0), int.from_bytes(os.urandom(4), "big") * 1_000_000)
        self._send = send

    def command(self, line: bytes) -> bytes:
        """The device's answer to one command (without its ``\\r``)."""
        text = line.decode("ascii", "replace")
        try:
            reply = self._command(text)
        except (ValueError, IndexError):
            reply = None
        if reply is None:
            self.refused.append(text)
            return ERROR
        return reply.encode() + OK if reply else OK

    def _command(self, c: str) -> str | None:
        """The reply's text (empty for a bare OK), or None for an error."""
        head = c[:1]
        if not c:
            return ""
        if head in "OL":
            if self.bitrate is None and not self.open:
                self.bitrate = self.bus_bitrate  # the firmware's default bitrate: the bus's own
            self.open, self.listen_only = True, head == "L"
            return ""
        if head == "C":
            self.open = False
            return ""
        if head == "S" or head == "Y":
            want = CODES.get(c) if head == "S" else DATA_CODES.get(c)
            bus = self.bus_bitrate if head == "S" else self.bus_data_bitrate
            if self.open or want is None or want != bus:  # the node would only make error frames
                return None
            if head == "S":
                self.bitrate = want
            else:
                self.data_bitrate = want
            return ""
        if head == "Z":
            if self.open or c not in ("Z0", "Z1"):
                return None
            self.timestamps = c == "Z1"
            return ""
        if head == "V":
            return VERSION
        if head == "v":
            return FIRMWARE
        if head == "N":
            return SERIAL
        if head == "F":
            if not self.open:
                return None
            flags, self.flags = self.flags, 0  # reading the flags clears them
            return f"F{flags:02X}"
        if head in "tTrRdDbB":
            if not self.open or self.listen_only:
                return None
            self._send(parse_frame(c))
            return "z" if head.islower() else "Z"
        return None

    def frame_text(self, msg: Any, stamp_ns: int) -> bytes | None:
        """A frame from the bus, stamped at run-clock ``stamp_ns``, as the device sends it to the
        host (None while closed)."""
        if not self.open or msg.is_error_frame or (msg.is_fd and not self.fd):
            return None
        ext = msg.is_extended_id
        ident = f"{msg.arbitration_id:08X}" if ext else f"{msg.arbitration_id:03X}"
        if msg.is_remote_frame:
            text = f"{'R' if ext else 'r'}{ident}{msg.dlc:d}"
        elif msg.is_fd:
            head = ("B" if ext else "b") if msg.bitrate_switch else ("D" if ext else "d")
            text = f"{head}{ident}{FD_LENGTHS.index(len(msg.data)):X}{bytes(msg.data).hex().upper()}"
        else:
            text = f"{'T' if ext else 't'}{ident}{len(msg.data):d}{bytes(msg.data).hex().upper()}"
        if self.timestamps:
            text += f"{self.clock.ns(stamp_ns) // 1_000_000 % Z1_PERIOD_MS:04X}"
        return text.encode() + OK


def parse_frame(c: str):
    """An SLCAN transmit command (``t1238112233…``) as a python-can message; ValueError if malformed."""
    import can

    head = c[0]
    ext = head in "TRDB"
    width = 8 if ext else 3
    ident = int(c[1:1 + width], 16)
    if ident >= (1 << 29 if ext else 1 << 11) or not c[1:1 + width].isalnum():
        raise ValueError(c)
    code = int(c[1 + width], 16)
    fd = head in "dDbB"
    if not fd and code > 8:
        raise ValueError(c)
    size = FD_LENGTHS[code] if fd else code
    payload = c[2 + width:]
    if head in "rR":
        if payload:
            raise ValueError(c)
        return can.Message(arbitration_id=ident, is_extended_id=ext, is_remote_frame=True, dlc=size)
    if len(payload) != 2 * size:
        raise ValueError(c)
    return can.Message(arbitration_id=ident, is_extended_id=ext, data=bytes.fromhex(payload), is_fd=fd,
                       bitrate_switch=head in "bB")


def serve_slcan(cfg: dict[str, Any], stop: threading.Event, ready: Callable[[dict[str, Any]], None]) -> None:
    """The SLCAN device on a pty until ``stop``; the pty's other end is linked at ``cfg['channel']``."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    link = Path(cfg["channel"])
    if link.is_symlink():  # a link a killed run left; anything else there is not ours to replace
        link.unlink()
    link.symlink_to(os.ttyname(slave))
    bus = node(cfg, f"slcan:{cfg['name']}")
    lock = threading.Lock()
    device = Slcan(cfg, bus.send)

    def write(data: bytes) -> bool:
        try:
            return os.write(master, data) == len(data)
        except BlockingIOError:
            return False

    def to_host(data: bytes) -> bool:
        if write(data):
            return True
        device.flags |= OVERRUN
        return False

    batches = Batches(cfg.get("batch_ns", 1_000_000), to_host)
    reader = threading.Thread(target=forward, args=(bus, batches, device.frame_text, lock, stop), daemon=True)
    reader.start()
    ready({"channel": str(link), "tty": os.ttyname(slave)})
    buffer = bytearray()
    try:
        while not stop.is_set():
            if not select.select([master], [], [], 0.1)[0]:
                continue
            try:
                buffer += os.read(master, 4096)
            except (BlockingIOError, OSError):
                continue
            while (end := buffer.find(b"\r")) >= 0 or len(buffer) > MAX_LINE:
                line, buffer = (bytes(buffer[:end]), buffer[end + 1:]) if end >= 0 else (b"~", bytearray())
                with lock:  # a reply goes out before any frame batched after it, as over one USB pipe
                    batches.flush_due(1 << 62)
                    write(device.command(line.strip(b"\n")))
    finally:
        stop.set()
        reader.join()
        bus.shutdown()
        link.unlink(missing_ok=True)
        os.close(master)
        os.close(slave)
        if device.refused:
            print(f"slcan {cfg['name']}: refused {len(device.refused)} command(s), first {device.refused[:5]}",
                  file=sys.stderr)


# ---- socketcand --------------------------------------------------------------------------------

class SocketcandClient:
    """One client of the emulated socketcand server: its own node on the bus, like the raw socket a
    real server opens per client (it sees every other node's frames, never its own)."""

    def __init__(self, cfg: dict[str, Any], sock: socket.socket, clock: Oscillator):
        self.cfg, self.sock, self.clock = cfg, sock, clock
        self.buffer = b""
        self.bus: Any = None
        self.raw_at: float | None = None  # when rawmode was answered
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.batches = Batches(cfg.get("batch_ns", 1_000_000), self._write)
        self._say("< hi >")

    def _write(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _say(self, text: str) -> None:
        with self.lock:
            self._write(text.encode())

    def feed(self, data: bytes) -> bool:
        """Take bytes from the client; False when it is gone."""
        if not data:
            return False
        self.buffer += data
        while (end := self.buffer.find(b">")) >= 0:
            command, self.buffer = self.buffer[:end + 1].decode("ascii", "replace").strip(), self.buffer[end + 1:]
            self._command(command[1:-1].split() if command.startswith("<") else ["?"])
        return len(self.buffer) <= MAX_LINE

    def _command(self, words: list[str]) -> None:
        verb = words[0] if words else ""
        if verb == "open" and len(words) == 2 and self.bus is None:
            if words[1] != str(self.cfg["channel"]):
                return self._say(f"< error could not open bus {words[1]} >")
            self.bus = node(self.cfg, f"socketcand:{self.cfg['name']}")
            return self._say("< ok >")
        if verb == "rawmode" and self.bus is not None and self.thread is None:
            self._say("< ok >")
            self.raw_at = time.monotonic()
            self.thread = threading.Thread(target=forward, args=(self.bus, self.batches, self._frame_text,
                                                                 self.lock, self.stop), daemon=True)
            return self.thread.start()
        if verb == "send" and self.thread is not None and len(words) >= 3:
            return self._send(words[1:])
        if verb == "echo":
            return self._say("< echo >")
        return self._say(f"< error unknown command {' '.join(words)[:40]} >")

    def _send(self, words: list[str]) -> None:
        import can

        try:
            ident, size, data = int(words[0], 16), int(words[1]), bytes(int(b, 16) for b in words[2:])
            if len(data) != size or size > 8 or ident >= (1 << 29 if len(words[0]) > 3 else 1 << 11):
                raise ValueError
        except ValueError:
            return self._say(f"< error malformed frame {' '.join(words)[:40]} >")
        self.bus.send(can.Message(arbitration_id=ident, is_extended_id=len(words[0]) > 3, data=data))

    def _frame_text(self, msg: Any, stamp_ns: int) -> bytes | None:
        """A frame ended at ``stamp_ns`` as the server sends it: stamped on the server's clock at
        its end of frame, as a server's kernel stamps a frame from its CAN controller (µs)."""
        if msg.is_error_frame or msg.is_remote_frame or msg.is_fd:
            return None
        assert self.raw_at is not None  # set before the forwarding thread that calls this starts
        if time.monotonic() - self.raw_at < FRAMES_AFTER_OK_S:
            time.sleep(FRAMES_AFTER_OK_S)
        stamp = self.clock.ns(stamp_ns) // 1000
        ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
        data = bytes(msg.data).hex().upper()
        return f"< frame {ident} {stamp // 1_000_000}.{stamp % 1_000_000:06d} {data} >".encode()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        if self.bus is not None:
            self.bus.shutdown()
        self.sock.close()


class EchoProbe:
    """A connection of its own to a socketcand server, real or emulated, for ``< echo >`` round
    trips (``< open CHANNEL >``: BCM mode, where a real server answers echo and sends no frames
    unasked). No one-way delay from the server to the host is longer than a round trip beside it,
    so they bound the transport floor an :class:`~hil.clock.AdapterClock` cannot see. OSError if it
    cannot connect, open or echo."""

    def __init__(self, host: str, port: int, channel: str, timeout: float = 2.0):
        self._sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reply()  # < hi >
            self._sock.sendall(f"< open {channel} >".encode())
            if self._reply() != b"< ok >":
                raise OSError(f"socketcand server refused to open {channel}")
        except BaseException:
            self._sock.close()
            raise

    def _reply(self) -> bytes:
        got = b""
        while not got.endswith(b">"):
            chunk = self._sock.recv(256)
            if not chunk:
                raise OSError("socketcand server closed the connection")
            got += chunk
        return got

    def trip_ns(self) -> int:
        """One echo round trip (ns)."""
        start = time.monotonic_ns()
        self._sock.sendall(b"< echo >")
        if self._reply() != b"< echo >":
            raise OSError("socketcand server did not echo")
        return time.monotonic_ns() - start

    def shutdown(self) -> None:
        self._sock.close()


def echo_round_trip_ns(host: str, port: int, channel: str, times: int = 20, timeout: float = 2.0) -> int:
    """The least of ``times`` echo round trips to a socketcand server (:class:`EchoProbe`)."""
    probe = EchoProbe(host, port, channel, timeout)
    try:
        return min(probe.trip_ns() for _ in range(times))
    finally:
        probe.shutdown()


def serve_socketcand(cfg: dict[str, Any], stop: threading.Event, ready: Callable[[dict[str, Any]], None]) -> None:
    """The socketcand server on 127.0.0.1 until ``stop``; its clock is its wall clock, drifting."""
    server = socket.create_server(("127.0.0.1", int(cfg.get("port") or 0)))
    clock = Oscillator(cfg.get("drift_ppm", 0), time.time_ns())
    clients: dict[socket.socket, SocketcandClient] = {}
    ready({"host": "127.0.0.1", "port": server.getsockname()[1]})
    try:
        while not stop.is_set():
            for sock in select.select([server, *clients], [], [], 0.1)[0]:
                if sock is server:
                    conn, _ = server.accept()
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    clients[conn] = SocketcandClient(cfg, conn, clock)
                    continue
                try:
                    alive = clients[sock].feed(sock.recv(4096))
                except OSError:
                    alive = False
                if not alive:
                    clients.pop(sock).close()
    finally:
        for client in clients.values():
            client.close()
        server.close()


SERVERS = {"slcan": serve_slcan, "socketcand": serve_socketcand}


def main(argv: list[str]) -> int:
    """``python -m hil.buses.adapters CONFIG.json``: serve until SIGTERM or stdin closes."""
    cfg = json.loads(Path(argv[0]).read_text())
    stop = threading.Event()
    from hil.lifecycle import signals

    signals.as_server(stop.set)  # the rig's teardown ends us, not a terminal's Ctrl-C

    def watch_stdin() -> None:
        while not stop.is_set():
            if select.select([sys.stdin], [], [], 0.2)[0] and not os.read(sys.stdin.fileno(), 4096):
                stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    def ready(info: dict[str, Any]) -> None:
        print(json.dumps({"pid": os.getpid(), **info}), flush=True)

    SERVERS[cfg["kind"]](cfg, stop, ready)
    return 0


if __name__ == "__main__":
    from hil.buses import without_mf4

    without_mf4()
    sys.exit(main(sys.argv[1:]))
