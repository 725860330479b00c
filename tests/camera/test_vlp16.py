"""VLP-16 data packets: the documented 1206-byte layout, and points back from a spinning scan."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hil.net import vlp16


def test_packet_layout_is_the_manuals():
    distance = np.zeros((12, 32))
    distance[0, 0], distance[11, 31] = 12.346, 131.07
    reflectivity = np.full((12, 32), 7)
    data = vlp16.encode(vlp16.Packet(np.arange(12) * 0.4 + 359.6, distance, reflectivity, 3_600_000_123))
    assert len(data) == 1206
    for b in range(12):
        block = data[b * 100:(b + 1) * 100]
        assert block[:2] == b"\xff\xee"
        assert struct.unpack_from("<H", block, 2)[0] == round((359.6 + b * 0.4) * 100) % 36000
    assert struct.unpack_from("<HB", data, 4) == (6173, 7)  # 12.346 m in 2 mm units, little-endian
    assert struct.unpack_from("<HB", data, 11 * 100 + 4 + 31 * 3) == (65535, 7)
    assert struct.unpack_from("<IBB", data, 1200) == (123, 0x37, 0x22)  # µs past the hour; strongest, VLP-16


def test_decode_refuses_what_is_not_a_data_packet():
    with pytest.raises(ValueError, match="1205 bytes: expected 1206"):
        vlp16.decode(bytes(1205))
    with pytest.raises(ValueError, match="0xFFEE flag"):
        vlp16.decode(bytes(1206))


def test_a_wall_ahead_comes_back_as_points_at_its_distance():
    def wall(azimuth, elevation, t_ns):  # a wall 20 m ahead, y = 20, seen within ±30°
        ahead = np.cos(azimuth) * np.cos(elevation)
        seen = (np.abs(np.sin(azimuth)) < 0.5) & (ahead > 0)
        return np.where(seen, 20 / np.where(seen, ahead, 1), 0.0), np.where(seen, 90, 0)

    packets = list(vlp16.spin(wall, 5_000_000_000, 76))  # a bit more than one revolution at 600 rpm
    times = [t for t, _ in packets]
    assert np.diff(times).tolist() == [1_327_104] * 75 and times[0] == 5_000_000_000 + 1_327_104
    decoded = [vlp16.decode(p) for _, p in packets]
    assert decoded[1].timestamp_us == (5_000_000_000 + 1_327_104) // 1000
    azimuths = np.concatenate([d.azimuth_deg for d in decoded])
    assert np.all(np.diff(azimuths[:900]) % 360 < 0.41)  # two firings (0.2° each) per block
    pts = np.concatenate([vlp16.points(d) for d in decoded])
    assert len(pts) > 1000
    assert np.allclose(pts[:, 1], 20, atol=0.02)  # y forward; 2 mm quantization, firing azimuth interpolated
    assert np.abs(pts[:, 0]).max() < 20 * np.tan(np.radians(30)) + 0.1
    assert sorted(set(np.round(np.degrees(np.arctan2(pts[:, 2], np.hypot(pts[:, 0], pts[:, 1])))).astype(int))) \
        == sorted(vlp16.ELEVATIONS_DEG.astype(int))
