"""The kernel-stamped sender: datagrams laid out ahead go out several to a system call, each
intact, in order, to its own destination, and each with its own send stamp; on a real network
sender and listener are bound to its interface."""

from __future__ import annotations

import socket
import time

import pytest

from hil.net.udp import SO_BINDTODEVICE, Listener, Sender


def test_prepared_datagrams_go_out_in_order_to_their_destinations_each_with_its_stamp():
    a, b = Listener("127.0.7.2", 0), Listener("127.0.7.3", 0)
    dests = [("127.0.7.2", int(a.dst.rsplit(":", 1)[1])), ("127.0.7.3", int(b.dst.rsplit(":", 1)[1]))]
    datagrams = [(bytes([k]) * (100 + 13 * k), dests[k % 3 == 0]) for k in range(40)]
    sender = Sender("127.0.7.1")
    try:
        sender.prepare(datagrams)
        sender.send_prepared(0, 1)
        sender.send_prepared(1, 25)  # more than one call may take: all of them, in order
        sender.send_prepared(26, 14)
        got = {a.dst: [], b.dst: []}
        for listener in (a, b):
            while (d := listener.recv(0.5)) is not None:
                assert d[1] == sender.src
                got[listener.dst].append(d[2])
        assert got[a.dst] == [data for data, to in datagrams if to == dests[0]]
        assert got[b.dst] == [data for data, to in datagrams if to == dests[1]]
        if sender.kernel:  # one stamp per datagram, numbered in the order sent
            stamps, until = [], time.monotonic() + 5
            while len(stamps) < len(datagrams) and time.monotonic() < until:
                stamps += sender.stamps(timeout_s=0.5)
            assert sorted(n for n, _ in stamps) == list(range(len(datagrams)))
    finally:
        for s in (a, b, sender):
            s.shutdown()


def test_on_a_real_network_sends_and_listens_go_through_its_interface():
    listener = Listener("127.0.7.2", 0, interface="lo")  # a real network on this host's loopback interface
    sender = Sender("127.0.7.1", interface="lo")
    try:
        assert sender.sock.getsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, 16).rstrip(b"\0") == b"lo"
        sender.sendto(b"via lo", ("127.0.7.2", int(listener.dst.rsplit(":", 1)[1])))
        assert listener.recv(2.0)[1:] == (sender.src, b"via lo")
    finally:
        sender.shutdown()
        listener.shutdown()
    with pytest.raises(OSError, match="interface 'nope0': No such device"):
        Sender("127.0.7.1", interface="nope0")
