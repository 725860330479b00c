"""Packet captures as stimulus: pcap and pcapng files (read with dpkt), UDP datagrams to replay.

Every packet of a capture is accounted for: a UDP datagram over IPv4 becomes a
:class:`~hil.stimulus.events.PacketEvent` whose channel is its original destination
(``"192.168.1.201:2368"``); anything else (ARP, TCP, IPv6, an IP fragment, which is not
reassembled) is counted as left out by kind. A packet cut short by the capture's snap length is
refused: its payload is not what was sent. Link types: Ethernet (with 802.1Q tags), Linux cooked
(SLL), raw IPv4, and BSD loopback.

Timestamps: pcap files are exact (µs or ns resolution); dpkt gives pcapng times as float seconds,
so a ns-resolution pcapng is read to within ~0.25 µs (µs-resolution ones exactly).

Where the datagrams go (:func:`aims`): a source's ``map`` sends a capture destination to a port a
target declares, written ``TARGET.PORT`` (``hpc.lidar``); destinations the map does not name are
left out. Without a map, a destination goes to the one target port in the rig with its port number.
"""

from __future__ import annotations

import decimal
import struct
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from hil.errors import StimulusError
from hil.stimulus.events import Event, PacketEvent, RecordError

if TYPE_CHECKING:
    from hil.spec.rig import Rig

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_ETH_IP, _ETH_VLAN = 0x0800, (0x8100, 0x88A8)


def read_pcap(stream: BinaryIO, fmt: str) -> Iterator[tuple[int, Event | str]]:
    """(packet number, event or why it is left out) for every packet of a pcap / pcapng stream."""
    import dpkt

    head = stream.read(4)
    stream.seek(0)
    is_ng = head == PCAPNG_MAGIC
    if is_ng != (fmt == "pcapng"):
        raise RecordError("", f"expected a {fmt} file, but it is {'pcapng' if is_ng else 'not pcapng'} "
                              f"(set format: {'pcapng' if is_ng else 'pcap'})")
    try:
        reader = dpkt.pcapng.Reader(stream) if is_ng else dpkt.pcap.Reader(stream)
    except (ValueError, dpkt.Error) as exc:
        raise RecordError("", f"unreadable {fmt} header ({exc})") from None
    link, divisor = reader.datalink(), reader._divisor
    n = 0
    packets = iter(reader)
    while True:
        try:
            ts, buf = next(packets)
        except StopIteration:
            return
        except (ValueError, struct.error, dpkt.Error) as exc:
            raise RecordError(f"packet {n + 1}", f"unreadable ({type(exc).__name__}: {exc}); the file is cut "
                                                 "or corrupt") from None
        n += 1
        yield n, _event(_t_ns(ts, divisor), link, buf, n)


def _t_ns(ts: Any, divisor: Any) -> int:
    """dpkt's timestamp → ns: exact for a Decimal (pcap, ns) or at the file's resolution."""
    if isinstance(ts, decimal.Decimal):
        return int(ts * 1_000_000_000)
    per = 1_000_000_000 / float(divisor)
    return round(round(ts * float(divisor)) * per) if per >= 1 else round(ts * 1e9)


def _event(t_ns: int, link: int, buf: bytes, n: int) -> Event | str:
    import dpkt

    ip = _ipv4(link, buf)
    if isinstance(ip, str):
        return ip
    if ip.p != dpkt.ip.IP_PROTO_UDP:
        return "packets that are not UDP"
    if ip.mf or ip.offset:
        return "IP fragments (not reassembled)"
    udp = ip.data
    if not isinstance(udp, dpkt.udp.UDP):
        raise RecordError(f"packet {n}", "a UDP header that does not parse")
    payload = bytes(udp.data)
    if udp.ulen - 8 != len(payload):
        raise RecordError(f"packet {n}", f"the UDP header says {udp.ulen - 8} payload bytes, the capture holds "
                                         f"{len(payload)}: the datagram was cut (a snap length?), its payload is "
                                         "not what was sent")
    dst = ".".join(str(b) for b in ip.dst)
    return PacketEvent(t_ns, f"{dst}:{udp.dport}", payload)


def _ipv4(link: int, buf: bytes) -> Any:
    """The IPv4 packet in a link-layer frame, or why there is none."""
    import dpkt

    try:
        if link == dpkt.pcap.DLT_EN10MB:
            eth = dpkt.ethernet.Ethernet(buf)
            return eth.data if isinstance(eth.data, dpkt.ip.IP) else "frames that are not IPv4"
        if link == dpkt.pcap.DLT_LINUX_SLL:
            sll = dpkt.sll.SLL(buf)
            return sll.data if isinstance(sll.data, dpkt.ip.IP) else "frames that are not IPv4"
        if link in (dpkt.pcap.DLT_RAW, 101, 228):  # raw IP (OpenBSD's DLT_RAW is 14; LINKTYPE_RAW 101, IPv4 228)
            return dpkt.ip.IP(buf) if buf[:1] and buf[0] >> 4 == 4 else "packets that are not IPv4"
        if link in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            return dpkt.ip.IP(buf[4:]) if buf[4:5] and buf[4] >> 4 == 4 else "packets that are not IPv4"
    except (dpkt.Error, struct.error, ValueError):
        return "frames that do not parse as IPv4"
    return f"frames of link type {link} (hil reads Ethernet, Linux cooked, raw IP, loopback)"


def aims(channels: Collection[str], mapping: dict[str, str], rig: Rig, where: str) -> dict[str, tuple[str, str, int]]:
    """Capture destination → (network, address, port) in ``rig`` for each channel that is played:
    the ``map`` (channel → ``TARGET.PORT``), or without one the one target port of that number."""
    from hil import net

    known = net.destinations(rig)
    offered = ", ".join(sorted(known)) or "none (targets declare ports under 'networks')"
    if mapping:
        unknown = [ch for ch in mapping if ch not in channels]
        if unknown:
            raise StimulusError(f"{where}: map names destination(s) {', '.join(map(repr, unknown))}, but the capture "
                                f"sends to: {', '.join(map(repr, sorted(channels)))}")
        bad = [v for v in mapping.values() if v not in known]
        if bad:
            raise StimulusError(f"{where}: map sends to {', '.join(map(repr, bad))}; a datagram goes to a target's "
                                f"port, TARGET.PORT: {offered}")
        return {ch: known[v] for ch, v in mapping.items()}
    out = {}
    for ch in channels:
        if not ch.rpartition(":")[2].isdigit():  # a camera topic: no destination to go by
            raise StimulusError(f"{where}: channel {ch!r} needs a 'map' entry (channel → TARGET.PORT); "
                                f"target ports: {offered}")
        port = int(ch.rsplit(":", 1)[1])
        fits = [name for name, (_, _, p) in known.items() if p == port]
        if len(fits) != 1:
            raise StimulusError(f"{where}: destination {ch!r} needs a 'map' entry (destination → TARGET.PORT); "
                                f"{len(fits)} target ports have number {port}: {', '.join(fits) or offered}")
        out[ch] = known[fits[0]]
    return out
