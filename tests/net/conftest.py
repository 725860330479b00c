"""Shared helpers for the network tests: captures of UDP datagrams, a rig with an emulated network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hil.net.capture import udp_frame, write_pcap, write_pcapng

RIG = """\
name: sim-net
buses:
  chassis: {kind: can, emulated: true, bitrate: 1000000}
  lan: {kind: ethernet, emulated: true, ports: {brake: BRAKE}}
targets:
  hpc:
    kind: hpc
    reach: {via: emulated}
    buses: [chassis]
    networks:
      lan: {ports: {lidar: LIDAR}}
"""


def write_capture(path: Path, packets: list[tuple[int, str, int, bytes]], ng: bool = False) -> Path:
    """A pcap (or pcapng) of datagrams ``(ns, dst address, dst port, payload)`` from 192.168.1.201:40000."""
    frames = [(t, udp_frame(("192.168.1.201", 40000), (addr, port), payload)) for t, addr, port, payload in packets]
    with open(path, "wb") as f:
        (write_pcapng if ng else write_pcap)(f, frames)
    return path


def free_udp_port(address: str) -> int:
    """A UDP port free on ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@pytest.fixture
def rig_text() -> str:
    """The rig with free ports: hil's ``brake`` on 127.0.1.1, the HPC's ``lidar`` on 127.0.1.2."""
    return RIG.replace("BRAKE", str(free_udp_port("127.0.1.1"))).replace("LIDAR", str(free_udp_port("127.0.1.2")))
