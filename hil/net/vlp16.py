"""Velodyne VLP-16 data packets (the 1206-byte UDP payload the sensor sends to port 2368), and back.

The layout is the one of the VLP-16 user manual: 12 data blocks of 100 bytes — flag 0xFFEE,
azimuth (u16, hundredths of a degree), then 32 returns of distance (u16, 2 mm units, 0 = no return)
and reflectivity (u8), i.e. two firing sequences of the 16 lasers — then a 4-byte timestamp (µs past
the top of the hour, of the packet's first firing) and two factory bytes (return mode, product id).
All fields are little-endian. In single-return mode at 600 rpm a firing sequence takes 55.296 µs,
so a packet covers 24 of them: 1327.104 µs, 753.5 packets/s.

:func:`spin` turns a range function (what each laser sees at each azimuth and time) into the
packets a spinning sensor would send; :func:`points` turns a packet back into x/y/z points in the
sensor's frame (y forward, x right, z up), as a driver would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

PORT = 2368
PACKET_SIZE = 1206
BLOCKS, LASERS = 12, 16
FIRING_NS = 55_296  # one firing sequence of the 16 lasers
PACKET_NS = 2 * BLOCKS * FIRING_NS
STRONGEST, VLP16 = 0x37, 0x22
DISTANCE_UNIT_M = 0.002
ELEVATIONS_DEG = np.array([-15, 1, -13, 3, -11, 5, -9, 7, -7, 9, -5, 11, -3, 13, -1, 15], dtype=float)
_BLOCK = np.dtype([("flag", ">u2"), ("azimuth", "<u2"),
                   ("returns", [("distance", "<u2"), ("reflectivity", "u1")], (2 * LASERS,))])
_PACKET = np.dtype([("blocks", _BLOCK, (BLOCKS,)), ("timestamp", "<u4"), ("mode", "u1"), ("product", "u1")])
assert _PACKET.itemsize == PACKET_SIZE

# What a spinning sensor sees: (azimuth rad, elevation rad, time ns), broadcast together → (metres, reflectivity)
RangeFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Packet:
    """One data packet's fields: per block its azimuth (degrees), per block and return its
    distance (m; 0 for none) and reflectivity; the timestamp in µs past the hour."""

    azimuth_deg: np.ndarray  # (12,)
    distance_m: np.ndarray  # (12, 32): two firing sequences of the 16 lasers
    reflectivity: np.ndarray  # (12, 32)
    timestamp_us: int


def encode(packet: Packet) -> bytes:
    """The 1206 bytes of a data packet (strongest return, VLP-16)."""
    raw = np.zeros((), _PACKET)
    raw["blocks"]["flag"] = 0xFFEE
    raw["blocks"]["azimuth"] = np.round(np.asarray(packet.azimuth_deg) * 100).astype(np.int64) % 36000
    raw["blocks"]["returns"]["distance"] = np.clip(np.round(packet.distance_m / DISTANCE_UNIT_M), 0, 0xFFFF)
    raw["blocks"]["returns"]["reflectivity"] = packet.reflectivity
    raw["timestamp"] = packet.timestamp_us % 3_600_000_000
    raw["mode"], raw["product"] = STRONGEST, VLP16
    return raw.tobytes()


def decode(data: bytes) -> Packet:
    """A data packet's fields; ValueError for anything that is not a VLP-16 data packet."""
    if len(data) != PACKET_SIZE:
        raise ValueError(f"VLP-16 data packet of {len(data)} bytes: expected {PACKET_SIZE}")
    raw = np.frombuffer(data, _PACKET)[0]
    if not (raw["blocks"]["flag"] == 0xFFEE).all():
        raise ValueError("VLP-16 data packet without the 0xFFEE flag at every block")
    returns = raw["blocks"]["returns"]
    return Packet(raw["blocks"]["azimuth"] / 100.0, returns["distance"] * DISTANCE_UNIT_M,
                  returns["reflectivity"].copy(), int(raw["timestamp"]))


def points(packet: Packet) -> np.ndarray:
    """The returns of a packet as (N, 3) x/y/z metres, y forward; the second firing sequence of a
    block is at the azimuth halfway to the next block's (the manual's interpolation)."""
    az = np.asarray(packet.azimuth_deg, dtype=float)
    step = np.diff(az, append=az[-1] + (az[-1] - az[-2])) % 360
    firing_az = np.radians(np.stack([az, az + step / 2], axis=1).repeat(LASERS, axis=1))  # (12, 32)
    elevation = np.radians(np.tile(ELEVATIONS_DEG, 2))[None, :]
    r = packet.distance_m
    xyz = np.stack([r * np.cos(elevation) * np.sin(firing_az), r * np.cos(elevation) * np.cos(firing_az),
                    r * np.sin(elevation) * np.ones_like(firing_az)], axis=-1)
    return xyz[r > 0]


def spin(ranges: RangeFunction, start_ns: int, count: int, rpm: float = 600.0) -> Iterator[tuple[int, bytes]]:
    """``count`` packets of a sensor spinning at ``rpm`` from ``start_ns`` (its first firing, Unix
    ns): each as (the time its last firing ends, its bytes), one every 1327.104 µs."""
    deg_per_ns = rpm * 360 / 60e9
    elevation = np.radians(np.tile(ELEVATIONS_DEG, 2))[None, :]
    for k in range(count):
        first = start_ns + k * PACKET_NS
        sequence = np.arange(2 * BLOCKS) + k * 2 * BLOCKS
        times = first + (sequence - k * 2 * BLOCKS) * FIRING_NS  # start of each firing sequence
        azimuth = (sequence * FIRING_NS * deg_per_ns) % 360
        firing_az = np.radians(azimuth.reshape(BLOCKS, 2).repeat(LASERS, axis=1))
        firing_t = times.reshape(BLOCKS, 2).repeat(LASERS, axis=1)
        distance, reflectivity = ranges(firing_az, elevation, firing_t)
        packet = Packet(azimuth[::2], np.broadcast_to(distance, (BLOCKS, 2 * LASERS)),
                        np.broadcast_to(reflectivity, (BLOCKS, 2 * LASERS)), first // 1000 % 3_600_000_000)
        yield first + PACKET_NS, encode(packet)
