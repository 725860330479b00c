"""The AEB demo's synthetic scene: recordings stock readers open, and the planner's perception finds
the object at the distance the scene put it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from hil.net import vlp16
from hil.net.rtpjpeg import depacketize, parse_packet
from hil.stimulus.camera import read_camera
from hil.stimulus.events import PacketEvent
from hil.stimulus.pcap import read_pcap
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benches" / "aeb"))
import perception  # noqa: E402
import scene  # noqa: E402

SCENE = scene.Scene(seconds=1.0, distance=40.0, closing=15.0)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene")
    frames = scene.write_mcap(out / "camera.mcap", scene.frames(SCENE, 640, 480))
    packets = scene.write_pcap(out / "lidar.pcap", scene.lidar_packets(SCENE))
    return out, frames, packets


def test_the_camera_recording_is_30_fps_of_jpeg_frames_replayed_as_rtp(recordings):
    out, frames, _ = recordings
    assert frames == 30
    with (out / "camera.mcap").open("rb") as f:
        events = [ev for _, ev in read_camera(f) if isinstance(ev, PacketEvent)]
    assert {ev.channel for ev in events} == {scene.CAMERA_TOPIC}
    firsts = sorted(ev.t_ns for ev in events if parse_packet(ev.data).fragment_offset == 0)
    assert firsts == [scene.START_NS + i * 1_000_000_000 // 30 for i in range(30)]
    received = list(depacketize([ev.data for ev in events]))
    assert [r.index for r in received] == list(range(30))
    for r in received[::5]:
        t = scene.START_NS + r.index * 1_000_000_000 // 30
        seen = perception.camera_distance(r.jpeg, scene.focal_px(640), SCENE.object_width)
        assert seen == pytest.approx(float(SCENE.distance_at(t)), rel=0.08)


def test_the_lidar_recording_is_vlp16_packets_to_port_2368(recordings):
    out, _, packets = recordings
    assert packets == 753  # 1 s at 1327.104 µs a packet
    with (out / "lidar.pcap").open("rb") as f:
        events = [ev for _, ev in read_pcap(f, "pcap")]
    assert all(isinstance(ev, PacketEvent) and ev.channel == "192.168.1.201:2368" and len(ev.data) == 1206
               for ev in events)
    assert set(np.diff([ev.t_ns for ev in events]).tolist()) == {vlp16.PACKET_NS}
    seen = [(ev.t_ns, perception.lidar_distance(ev.data)) for ev in events]
    hits = [(t, d) for t, d in seen if d is not None]
    assert 8 <= len(hits) <= 40  # the object covers a few degrees of each of the 10 revolutions
    for t, d in hits:  # the packet's last firing ends at t; its first was 1.3 ms before
        assert float(SCENE.distance_at(t)) - 0.05 <= d <= float(SCENE.distance_at(t - vlp16.PACKET_NS)) + 0.05


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_tshark_reads_the_lidar_capture(recordings):
    out, _, packets = recordings
    fields = subprocess.run(["tshark", "-n", "-r", str(out / "lidar.pcap"), "-T", "fields", "-e", "udp.dstport",
                             "-e", "udp.length", "-e", "frame.time_relative"],
                            capture_output=True, text=True, timeout=120, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in fields if line]
    assert len(rows) == packets
    assert {(r[0], r[1]) for r in rows} == {("2368", str(8 + 1206))}
    assert float(rows[-1][2]) == pytest.approx((packets - 1) * 1.327104e-3, abs=1e-6)
