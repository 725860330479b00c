"""Shared helpers for the network tests: captures written with dpkt, a rig with an emulated network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

RIG = """\
name: sim-net
buses:
  chassis: {kind: can, emulated: true}
  lan: {kind: ethernet, emulated: true, ports: {brake: 0}}
targets:
  hpc:
    kind: hpc
    reach: {via: emulated}
    buses: [chassis]
    networks:
      lan: {ports: {lidar: PORT}}
"""


def write_capture(path: Path, packets: list[tuple[float, str, int, bytes]], ng: bool = False) -> Path:
    """A pcap (or pcapng) of Ethernet/IPv4/UDP datagrams ``(unix time, dst address, dst port, payload)``."""
    import dpkt

    with open(path, "wb") as f:
        writer = dpkt.pcapng.Writer(f) if ng else dpkt.pcap.Writer(f, nano=True)
        for ts, addr, port, payload in packets:
            udp = dpkt.udp.UDP(sport=40000, dport=port, data=payload)
            udp.ulen = 8 + len(payload)
            ip = dpkt.ip.IP(src=socket.inet_aton("192.168.1.201"), dst=socket.inet_aton(addr),
                            p=dpkt.ip.IP_PROTO_UDP, data=udp)
            ip.len = 20 + udp.ulen
            eth = dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=b"\x02" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
            writer.writepkt(bytes(eth), ts=ts)
    return path


@pytest.fixture
def free_udp_port() -> int:
    """A UDP port free on 127.0.1.2 right now (the emulated target's default address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.1.2", 0))
        return s.getsockname()[1]
