"""The simbus broker: one process serving every emulated bus of a running rig.

Each CAN bus is a listening SOCK_SEQPACKET Unix socket (``<dir>/<bus>.sock``, mode 0600, in a 0700
folder); each serial link is a pair of ptys (see :mod:`hil.simbus.pty`). The loop is a plain
``select`` (microsecond timeouts, unlike epoll's milliseconds) with the timer slack lowered to 1 ns,
so the broker wakes close to each end-of-frame time.

Run as ``python -m hil.simbus.broker CONFIG.json`` it prints one JSON line when ready (socket paths,
tty paths) and serves until SIGTERM or until its stdin closes (its parent died); SIGINT is ignored.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hil.clock import adopt_epoch_offset, epoch_offset_ns, fine_timer_slack
from hil.lifecycle import signals
from hil.simbus.bus import TX_QUEUE_LIMIT, Client, SimBus
from hil.simbus.faults import FaultSet, parse_fault
from hil.simbus.protocol import connect, unix_address
from hil.simbus.pty import PtyLink
from hil.simbus.wire import WireModel

PRIORITY_NICE = -5


def _tune_scheduling() -> None:
    """Wake on time: 1 ns timer slack (default 50 µs), and a slightly higher priority (nice −5) when
    the user may have it — the broker stands in for bus hardware, and it only uses CPU for traffic."""
    fine_timer_slack()
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(os.getpriority(os.PRIO_PROCESS, 0), PRIORITY_NICE))
    except OSError:
        pass


class Broker:
    """Serves the buses and links described by ``config`` (see :func:`hil.simbus.service.broker_config`)."""

    def __init__(self, config: dict[str, Any]):
        self.dir = Path(config["dir"])
        self.buses: list[SimBus] = []
        self.links: list[PtyLink] = []
        self._listeners: dict[int, tuple[socket.socket, SimBus]] = {}
        self._clients: dict[int, tuple[Client, SimBus]] = {}
        self.running = True
        self._wake_r, self._wake_w = os.pipe()  # stop() writes here so a blocked select returns
        os.set_blocking(self._wake_w, False)
        now = time.monotonic_ns()
        epoch = adopt_epoch_offset(config["epoch_offset_ns"]) if "epoch_offset_ns" in config else epoch_offset_ns()
        try:
            for spec in config.get("can", []):
                model = WireModel(spec["bitrate"], spec.get("data_bitrate"), spec.get("wire_model", True))
                bus = SimBus(spec["name"], str(self.dir / f"{spec['name']}.sock"), model,
                             FaultSet(f"{config.get('seed', 0)}:{spec['name']}"), spec.get("fd", False),
                             welcome={"bitrate": spec["bitrate"], "data_bitrate": spec.get("data_bitrate"),
                                      "epoch_offset_ns": epoch})
                bus.since_ns = now
                for fault in spec.get("faults", []):
                    bus.faults.arm(parse_fault(fault), now)
                self._listen(bus)
                self.buses.append(bus)
            for spec in config.get("serial", []):
                self.links.append(PtyLink(spec["name"], spec["baudrate"], spec.get("pace", True)))
        except BaseException:
            self.close()
            raise

    def _listen(self, bus: SimBus) -> None:
        if os.path.exists(bus.path):
            try:
                connect(bus.path).close()
            except OSError:
                os.unlink(bus.path)  # left behind by a broker that was killed
            else:
                raise RuntimeError(f"another simbus broker already serves {bus.path}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        address, fd = unix_address(bus.path)
        old = os.umask(0o177)
        try:
            sock.bind(address)
        finally:
            os.umask(old)
            if fd is not None:
                os.close(fd)
        os.chmod(bus.path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        self._listeners[sock.fileno()] = (sock, bus)

    def attach_info(self) -> dict[str, Any]:
        """Where clients attach: socket path per CAN bus, host/device tty per serial link."""
        return {"pid": os.getpid(),
                "can": {b.name: b.path for b in self.buses},
                "serial": {link.name: {"host": link.host_path, "device": link.device_path} for link in self.links}}

    def serve(self, watch_fd: int | None = None) -> None:
        """Run until :meth:`stop` (or a signal) — or until ``watch_fd`` reaches end of file."""
        _tune_scheduling()
        wake: int | None = None
        clients, buses, links = self._clients, self.buses, self.links
        # the descriptors always read: the wake pipe, the listeners, the watched fd (fixed once serving)
        always = [self._wake_r, *self._listeners, *([] if watch_fd is None else [watch_fd])]
        monotonic_ns = time.monotonic_ns
        while self.running:
            # a full transmit queue is read again once the wire drained it
            rlist = always + [fd for fd, (client, _bus) in clients.items() if len(client.tx) < TX_QUEUE_LIMIT]
            wlist = [fd for fd, (client, _bus) in clients.items() if client.out]
            for link in links:
                rlist += link.readers()
            timeout = None if wake is None else max(0.0, (wake - monotonic_ns()) / 1e9)
            try:
                readable, writable, _ = select.select(rlist, wlist, [], timeout)
            except InterruptedError:
                continue
            now = monotonic_ns()
            for fd in readable:
                entry = clients.get(fd)
                if entry is None:
                    self._readable(fd, now, watch_fd)
                elif not entry[1].receive(entry[0], now):
                    self._drop(fd)
            for fd in writable:
                entry = clients.get(fd)
                if entry is not None:
                    entry[0].flush()
            wake = None
            for bus in buses:
                t = bus.advance(now)
                if t is not None and (wake is None or t < wake):
                    wake = t
            for link in links:
                t = link.pump(now)
                if t is not None and (wake is None or t < wake):
                    wake = t

    def _readable(self, fd: int, now: int, watch_fd: int | None) -> None:
        """Anything readable but a client: a new connection, the watched fd, the wake pipe, a pty."""
        if fd in self._listeners:
            sock, bus = self._listeners[fd]
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.setblocking(False)
            client = Client(conn)
            bus.clients.append(client)
            self._clients[conn.fileno()] = (client, bus)
        elif fd == watch_fd:
            if not os.read(fd, 4096):
                self.running = False
        elif fd == self._wake_r:
            os.read(fd, 4096)
        else:
            for link in self.links:
                link.read(fd, now)

    def _drop(self, fd: int) -> None:
        client, bus = self._clients.pop(fd)
        bus.depart(client)
        client.sock.close()

    def stop(self, *_args: Any) -> None:
        """End :meth:`serve` (safe from a signal handler or another thread)."""
        self.running = False
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        """Close every socket and pty; remove the socket files."""
        for fd in list(self._clients):
            self._drop(fd)
        for sock, bus in self._listeners.values():
            sock.close()
            try:
                os.unlink(bus.path)
            except FileNotFoundError:
                pass
        self._listeners.clear()
        for link in self.links:
            link.close()
        self.links = []
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    broker = Broker(config)
    # Ctrl-C in a terminal reaches the whole foreground group; the controller then tears the rig
    # down in order and ends the broker last (SIGTERM or closing our stdin), so SIGINT is not ours.
    signals.as_server(broker.stop)
    try:
        print(json.dumps(broker.attach_info()), flush=True)
        broker.serve(watch_fd=sys.stdin.fileno())
    finally:
        broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
