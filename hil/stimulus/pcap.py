"""Packet captures as stimulus: pcap and pcapng files (read with dpkt), UDP datagrams to replay.

Every packet of a capture is accounted for: a UDP datagram over IPv4 becomes a
:class:`~hil.stimulus.events.PacketEvent` whose channel is its original destination
(``"192.168.1.201:2368"``); anything else (ARP, TCP, IPv6) is counted as left out by kind. A
datagram the sender's IP layer fragmented is reassembled (RFC 791: fragments belong together by
source, destination, protocol and identification, in any order) and becomes one event at its
last fragment's time — when a receiver had it whole, as a CAN log's times are end-of-frame times —
and record (packet number); fragments that never make a whole datagram by the end of the file, or
that overlap with different bytes, are refused naming their packets. A packet cut short by the
capture's snap length is refused: its payload is not what was sent. Link types: Ethernet (with
802.1Q tags), Linux cooked (SLL), raw IPv4, and BSD loopback.

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
    fragments = _Fragments()
    while True:
        try:
            ts, buf = next(packets)
        except StopIteration:
            fragments.finish()
            return
        except (ValueError, struct.error, dpkt.Error) as exc:
            raise RecordError(f"packet {n + 1}", f"unreadable ({type(exc).__name__}: {exc}); the file is cut "
                                                 "or corrupt") from None
        n += 1
        item = _event(_t_ns(ts, divisor), link, buf, n, fragments)
        if item is not None:  # None: a fragment of a datagram not yet whole
            yield n, item


def _t_ns(ts: Any, divisor: Any) -> int:
    """dpkt's timestamp → ns: exact for a Decimal (pcap, ns) or at the file's resolution."""
    if isinstance(ts, decimal.Decimal):
        return int(ts * 1_000_000_000)
    per = 1_000_000_000 / float(divisor)
    return round(round(ts * float(divisor)) * per) if per >= 1 else round(ts * 1e9)


def _event(t_ns: int, link: int, buf: bytes, n: int, fragments: _Fragments) -> Event | str | None:
    import dpkt

    ip = _ipv4(link, buf)
    if isinstance(ip, str):
        return ip
    if ip.p != dpkt.ip.IP_PROTO_UDP:
        return "packets that are not UDP"
    udp = ip.data
    if ip.mf or ip.offset:
        whole = fragments.add(ip, n)
        if whole is None:
            return None
        try:
            udp = dpkt.udp.UDP(whole)
        except dpkt.Error:
            udp = None
    if not isinstance(udp, dpkt.udp.UDP):
        raise RecordError(f"packet {n}", "a UDP header that does not parse")
    payload = bytes(udp.data)
    if udp.ulen - 8 != len(payload):
        raise RecordError(f"packet {n}", f"the UDP header says {udp.ulen - 8} payload bytes, the capture holds "
                                         f"{len(payload)}: the datagram was cut (a snap length?), its payload is "
                                         "not what was sent")
    dst = ".".join(str(b) for b in ip.dst)
    return PacketEvent(t_ns, f"{dst}:{udp.dport}", payload)


MAX_IP_PAYLOAD = 65_515  # 65,535 bytes of IPv4 packet, less its 20-byte header


class _Fragments:
    """The IP fragments of UDP datagrams read so far, gathered until each datagram is whole."""

    def __init__(self) -> None:
        self.pending: dict[tuple, tuple[dict[int, bytes], list[int], list[int | None]]] = {}

    def add(self, ip: Any, n: int) -> bytes | None:
        """Take fragment ``ip`` (packet ``n``); its datagram's IP payload once every byte of it came."""
        payload = bytes(ip.data)
        if len(payload) != ip.len - 4 * ip.hl:
            raise RecordError(f"packet {n}", f"an IP fragment of {ip.len - 4 * ip.hl} payload bytes of which the "
                                             f"capture holds {len(payload)}: it was cut (a snap length?)")
        at = ip.offset * 8  # dpkt gives the fragment offset in 8-byte units
        if at + len(payload) > MAX_IP_PAYLOAD:
            raise RecordError(f"packet {n}", f"an IP fragment at byte {at:,} of {len(payload)} bytes: past the "
                                             f"largest IPv4 payload ({MAX_IP_PAYLOAD:,} bytes)")
        key = (ip.src, ip.dst, ip.p, ip.id)
        pieces, packets, total = self.pending.setdefault(key, ({}, [], [None]))
        for start, piece in pieces.items():
            lo, hi = max(start, at), min(start + len(piece), at + len(payload))
            if lo < hi and piece[lo - start:hi - start] != payload[lo - at:hi - at]:
                raise RecordError(f"packet {n}", f"an IP fragment that overlaps packet {packets[0]}'s datagram "
                                                 f"{_describe(key)} at bytes {lo}–{hi - 1} with other bytes")
        pieces[at] = payload
        packets.append(n)
        if not ip.mf:
            total[0] = at + len(payload)
        if total[0] is not None and max(start + len(p) for start, p in pieces.items()) > total[0]:
            raise RecordError(f"packet {n}", f"IP fragments of datagram {_describe(key)} that reach past its last "
                                             f"fragment's end (byte {total[0]:,})")
        whole = _joined(pieces, total[0])
        if whole is not None:
            del self.pending[key]
        return whole

    def finish(self) -> None:
        """At the end of the capture: fragments of a datagram that never came whole are refused."""
        for key, (pieces, packets, total) in self.pending.items():
            got = sum(len(p) for p in pieces.values())
            size = f"of {total[0]:,}" if total[0] is not None else "(its last fragment never came)"
            raise RecordError(f"packet{'s' * (len(packets) > 1)} {', '.join(map(str, packets))}",
                              f"IP fragments of datagram {_describe(key)} that the capture does not complete: "
                              f"{got:,} bytes {size}")


def _describe(key: tuple) -> str:
    src, dst, _, ident = key
    return f"{'.'.join(map(str, src))} → {'.'.join(map(str, dst))} (IP id {ident})"


def _joined(pieces: dict[int, bytes], total: int | None) -> bytes | None:
    """The datagram's payload if ``pieces`` (offset → bytes) cover ``total`` bytes without a hole."""
    if total is None:
        return None
    out, end = bytearray(total), 0
    for at in sorted(pieces):
        if at > end:
            return None
        out[at:at + len(pieces[at])] = pieces[at]
        end = max(end, at + len(pieces[at]))
    return bytes(out) if end >= total else None


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
