"""Packet captures written by hil: Ethernet / IPv4 / UDP frames built with dpkt, and a pcapng
writer with nanosecond timestamps (dpkt's writes µs), which Wireshark and tshark open."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import BinaryIO

NS_RESOLUTION = b"\x09"  # if_tsresol: 10^-9 s
_MAC_HIL, _MAC_PEER = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """An Ethernet II frame carrying ``payload`` as a UDP datagram from ``src`` to ``dst``
    (IPv4 addresses and ports), with correct lengths and checksums."""
    import dpkt

    udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
    udp.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=dpkt.ip.IP_PROTO_UDP, ttl=64,
                    data=udp)
    ip.len = 20 + udp.ulen
    return bytes(dpkt.ethernet.Ethernet(dst=_MAC_PEER, src=_MAC_HIL, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def write_pcapng(f: BinaryIO, frames: Iterable[tuple[int, bytes]], name: str = "hil") -> int:
    """Write Ethernet ``frames`` ``(Unix ns, frame)`` to ``f`` as pcapng with one interface named
    ``name`` and nanosecond timestamps; returns how many were written."""
    import dpkt.pcapng as ng

    opts = [ng.PcapngOptionLE(code=ng.PCAPNG_OPT_IF_TSRESOL, data=NS_RESOLUTION),
            ng.PcapngOptionLE(code=2, data=name.encode()),  # if_name
            ng.PcapngOptionLE(code=ng.PCAPNG_OPT_ENDOFOPT)]
    idb = ng.InterfaceDescriptionBlockLE(snaplen=0xFFFF, linktype=1, opts=opts)
    writer = ng.Writer(f, shb=ng.SectionHeaderBlockLE(), idb=idb)
    n = 0
    for t_ns, frame in frames:
        writer.writepkt(ng.EnhancedPacketBlockLE(ts_high=t_ns >> 32, ts_low=t_ns & 0xFFFFFFFF, caplen=len(frame),
                                                 pkt_len=len(frame), pkt_data=frame))
        n += 1
    return n


def write_pcap(f: BinaryIO, frames: Iterable[tuple[int, bytes]]) -> None:
    """Write Ethernet ``frames`` ``(Unix ns, frame)`` to ``f`` as a nanosecond pcap (dpkt takes
    float seconds: exact to the ns for times below ~10^6 s, to ~0.2 µs for today's Unix times)."""
    import dpkt

    writer = dpkt.pcap.Writer(f, snaplen=0xFFFF, nano=True)
    for t_ns, frame in frames:
        writer.writepkt(frame, ts=t_ns / 1e9)
