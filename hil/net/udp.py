"""UDP on a network of the rig: a sender that learns from the kernel when each datagram really
went out, and a listener whose datagrams the kernel stamps on arrival.

``SO_TIMESTAMPING`` with ``SOF_TIMESTAMPING_TX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY``: for
every datagram sent, the kernel queues on the socket's error queue the CLOCK_REALTIME time at
which the device driver took it (on ``lo``, ``loopback_xmit``) and the datagram's number on the
socket (from 0), without the payload. :meth:`Sender.stamps` reads them back. Where the option is
refused (an old kernel, a platform without it), ``kernel`` is False and the caller measures the
time ``sendto`` returned instead — and says so.

Datagrams laid out ahead (:meth:`Sender.prepare`) go out several to a system call
(``sendmmsg``, through ctypes, with the GIL released): a sender behind its deadlines — a camera
frame's packets are 12 µs apart at 1 Gbit/s, about what one ``sendto`` from Python costs on
loopback — then catches up at the kernel's cost per datagram, not Python's. Each datagram still
gets its own send stamp and number.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import time

SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
TX_FLAGS = (SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID
            | SOF_TIMESTAMPING_OPT_TSONLY)
SO_EE_ORIGIN_TIMESTAMPING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
MAX_DATAGRAM = 65_535
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err: errno, origin, type, code, pad, info, data
_TIMESPEC = struct.Struct("=qq")
ERRQUEUE_BUFFER = 8 << 20  # room for the stamps of a long burst before the reader drains them
KERNEL = "kernel TX software timestamp (SO_TIMESTAMPING, error queue)"
RETURNED = "sendto returned (the kernel gave no send timestamps)"


def _bind(sock: socket.socket, address: str, port: int, interface: str | None) -> None:
    """Bind ``sock`` to ``address:port`` and, on a real network, to its host ``interface``
    (``SO_BINDTODEVICE``: datagrams leave and arrive through that interface whatever the routing
    table would pick; Linux ≥ 5.7 lets any user do it once)."""
    if interface is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"interface {interface!r}: {exc.strerror}") from None
    sock.bind((address, port))


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):  # struct mmsghdr: a struct msghdr (padded to its alignment) and the bytes sent
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _sendmmsg():
    """libc's ``sendmmsg`` (None where there is none: the prepared datagrams go one ``sendto`` each)."""
    try:
        f = ctypes.CDLL(None, use_errno=True).sendmmsg
    except (OSError, AttributeError):
        return None
    f.argtypes, f.restype = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int], ctypes.c_int
    return f


def _sockaddr_in(address: str, port: int) -> bytes:
    return struct.pack("=H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(address) + bytes(8)


class Sender:
    """A UDP socket bound to ``address`` (any port) that sends datagrams and, where the kernel
    allows, collects their send timestamps."""

    def __init__(self, address: str, interface: str | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _bind(self.sock, address, 0, interface)
        self.src = "{}:{}".format(*self.sock.getsockname())  # "ADDRESS:PORT" its datagrams come from
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ERRQUEUE_BUFFER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ERRQUEUE_BUFFER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_FLAGS)
            self.kernel = True
        except OSError:
            self.kernel = False
        self._poll = select.poll()
        self._poll.register(self.sock, select.POLLERR)
        self.sendto = self.sock.sendto
        self._prepared: list[tuple[bytes, tuple[str, int]]] = []
        self._keep: list[object] = []  # the ctypes buffers the prepared headers point into
        self._headers = 0  # address of the first prepared struct mmsghdr
        self._sendmmsg = _sendmmsg()

    def prepare(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        """Lay out ``datagrams`` (payload, (address, port)), in the order they will be sent, for
        :meth:`send_prepared`."""
        self._prepared = datagrams
        if self._sendmmsg is None or not datagrams:
            return
        names = {to: ctypes.create_string_buffer(_sockaddr_in(*to), 16) for to in {to for _, to in datagrams}}
        iov = (_Iovec * len(datagrams))(*[_Iovec(ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value, len(data))
                                          for data, _ in datagrams])
        headers = (_Mmsghdr * len(datagrams))()
        at, size = ctypes.addressof(iov), ctypes.sizeof(_Iovec)
        for k, (_, to) in enumerate(datagrams):
            h = headers[k].hdr
            h.name, h.namelen, h.iov, h.iovlen = ctypes.addressof(names[to]), 16, at + k * size, 1
        self._keep = [names, iov, headers, datagrams]
        self._headers = ctypes.addressof(headers)

    def send_prepared(self, first: int, count: int) -> None:
        """Send prepared datagrams ``first`` … ``first + count - 1``, as few system calls as the kernel takes."""
        if self._sendmmsg is None:
            for data, to in self._prepared[first:first + count]:
                self.sock.sendto(data, to)
            return
        fd, size = self.sock.fileno(), ctypes.sizeof(_Mmsghdr)
        while count > 0:
            done = self._sendmmsg(fd, self._headers + first * size, count, 0)
            if done < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                raise OSError(err, f"sendmmsg: {os.strerror(err)}")
            first, count = first + done, count - done

    def stamps(self, until_ns: int = 0, timeout_s: float = 0.0, most: int = 0) -> list[tuple[int, int]]:
        """``(datagram number, send time in CLOCK_MONOTONIC ns)`` for the stamps queued, read one
        by one until none is left, the monotonic clock passes ``until_ns`` or ``most`` were read
        (0: no limit), after waiting up to ``timeout_s`` for the first. Realtime stamps are moved onto the monotonic
        clock with the offset read now (two clock reads, ~0.1 µs apart)."""
        if not self.kernel or (timeout_s and not self._poll.poll(timeout_s * 1000)):
            return []
        offset = time.time_ns() - time.monotonic_ns()
        out: list[tuple[int, int]] = []
        while (not until_ns or time.monotonic_ns() < until_ns) and (not most or len(out) < most):
            try:
                _, ancillary, _, _ = self.sock.recvmsg(0, 256, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            t = number = None
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                    sec, nsec = _TIMESPEC.unpack_from(data)  # [0]: the software stamp
                    t = sec * 1_000_000_000 + nsec - offset
                elif len(data) >= _EXTENDED_ERR.size:
                    _, origin, *_, number = _EXTENDED_ERR.unpack_from(data)
                    number = number if origin == SO_EE_ORIGIN_TIMESTAMPING else None
            if t is not None and number is not None:
                out.append((number, t))
        return out

    def shutdown(self) -> None:
        """Close the socket (python-can's name, so the injector closes every bus handle alike)."""
        self.sock.close()


class Listener:
    """A UDP socket bound to ``address:port`` whose datagrams the kernel stamps on arrival
    (``SO_TIMESTAMPNS``), so when the reader gets to them does not matter."""

    def __init__(self, address: str, port: int, interface: str | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ERRQUEUE_BUFFER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _bind(self.sock, address, port, interface)
        self.dst = f"{address}:{self.sock.getsockname()[1]}"

    def recv(self, timeout_s: float) -> tuple[int, str, bytes] | None:
        """The next datagram ``(arrival on CLOCK_MONOTONIC ns, "ADDRESS:PORT" it came from, payload)``,
        or None when none came within ``timeout_s``."""
        if not select.select([self.sock], [], [], timeout_s)[0]:
            return None
        data, ancillary, _, (address, port) = self.sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(_TIMESPEC.size))
        offset = time.time_ns() - time.monotonic_ns()
        stamp = next((d for level, kind, d in ancillary if kind == SO_TIMESTAMPNS), None)
        if stamp is None:  # no kernel stamp: the time it was read
            return time.monotonic_ns(), f"{address}:{port}", data
        sec, nsec = _TIMESPEC.unpack_from(stamp)
        return sec * 1_000_000_000 + nsec - offset, f"{address}:{port}", data

    def shutdown(self) -> None:
        self.sock.close()
