"""An emulated serial link: two pty pairs joined by a forwarder, with optional baud-rate pacing.

A single pty pair has a tty path on one side only, but both ends of a serial link need a real tty that
pyserial opens: the host (controller) end and the device (emulated target) end. So each link is two
pty pairs; the broker copies bytes between the two masters. With pacing, a byte is handed on no
earlier than one character time (10 bits at 8N1) after the previous one, so bytes never flow faster
than the configured baud rate, in either direction.

Bytes the link holds back for pacing are still in the sender's UART, not yet on the line. The masters
run in packet mode, so the broker sees the ttys' flushes: discarding a tty's receive queue
(``tcflush(TCIFLUSH)``: pyserial's ``reset_input_buffer``, also done when pyserial opens a port)
discards the bytes still on their way to it, and discarding its transmit queue (``TCOFLUSH``)
discards the bytes it wrote that were not yet sent. So a console that drops stale bytes before a
reset does not get the rest of the old line after it.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import tty

PENDING_LIMIT = 1 << 16  # bytes held per direction before the writer is held back
RETRY_NS = 1_000_000  # when the reading side's buffer is full, try again after this long


class _Direction:
    """Bytes read from one master, waiting to be written to the other."""

    def __init__(self, src: int, dst: int):
        self.src = src
        self.dst = dst
        self.pending = bytearray()
        self.line_free = 0  # run-clock time the previous byte finished on the line


class PtyLink:
    """The two ttys of one emulated serial link and the forwarding between them."""

    def __init__(self, name: str, baudrate: int, pace: bool):
        self.name = name
        self.byte_ns = round(10 * 1e9 / baudrate) if pace else 0
        self._fds: list[int] = []
        host_master, self.host_path = self._open_pair()
        device_master, self.device_path = self._open_pair()
        self.directions = (_Direction(host_master, device_master), _Direction(device_master, host_master))

    def _open_pair(self) -> tuple[int, str]:
        master, slave = os.openpty()
        self._fds += [master, slave]  # the slave stays open here, so the master never sees EIO
        tty.setraw(slave)
        fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(master, False)
        return master, os.ttyname(slave)

    def readers(self) -> list[int]:
        return [d.src for d in self.directions if len(d.pending) < PENDING_LIMIT]

    def read(self, fd: int, now: int) -> None:
        """One packet from master ``fd``: bytes its tty wrote, or the news that the tty flushed."""
        d = next((d for d in self.directions if d.src == fd), None)
        if d is None:  # another link's master
            return
        try:
            packet = os.read(fd, 65536)
        except OSError:
            return
        if not packet:
            return
        if packet[0] != termios.TIOCPKT_DATA:
            if packet[0] & termios.TIOCPKT_FLUSHWRITE:  # what this tty wrote and was not sent yet
                d.pending.clear()
            if packet[0] & termios.TIOCPKT_FLUSHREAD:  # what was on its way to this tty
                next(o for o in self.directions if o.dst == fd).pending.clear()
            return
        if not d.pending and d.line_free < now:
            d.line_free = now  # the line was idle: the first byte starts now
        d.pending += packet[1:]

    def pump(self, now: int) -> int | None:
        """Write every byte whose time has come; return when the next one is due (None: idle)."""
        wake = None
        for d in self.directions:
            if not d.pending:
                continue
            due = min(len(d.pending), (now - d.line_free) // self.byte_ns) if self.byte_ns else len(d.pending)
            nxt = d.line_free + self.byte_ns
            if due > 0:
                try:
                    written = os.write(d.dst, d.pending[:due])
                except OSError:  # the reader's buffer is full (or it is gone): try again soon
                    written = 0
                del d.pending[:written]
                d.line_free += written * self.byte_ns
                nxt = d.line_free + self.byte_ns
                if written < due:
                    d.line_free = max(d.line_free, now)  # no credit for time spent blocked
                    nxt = now + RETRY_NS
            if d.pending:
                wake = nxt if wake is None else min(wake, nxt)
        return wake

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []
