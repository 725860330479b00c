"""A camera MCAP replayed by hil's injector onto an emulated network, received by a stock RTP/JPEG
receiver (GStreamer's udpsrc → rtpjpegdepay → jpegdec): every frame decodes to the recorded picture."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hil.session.inject import inject
from hil.buses import RigBuses
from hil.spec.rig import Rig
from hil.spec.suite import Stimulus
from hil.stimulus.timeline import build_timeline
from tests.conftest import ROOT

from .test_rtpjpeg import _free_udp_port, jpeg, picture, pixels

sys.path.insert(0, str(ROOT / "benches" / "aeb"))
import scene  # noqa: E402

TARGET = "127.0.1.2"
CAPS = "application/x-rtp,media=video,encoding-name=JPEG,clock-rate=90000,payload=26"


def _listening(port: int) -> bool:
    """Whether something is bound to TARGET:port (UDP), from /proc/net/udp."""
    local = f"0201007F:{port:04X}"  # 127.0.1.2, little-endian hex as the kernel writes it
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == local for line in f.readlines()[1:])


@pytest.mark.skipif(not shutil.which("gst-launch-1.0"), reason="GStreamer (gstreamer1.0-tools, -plugins-good) not installed")
def test_gstreamer_decodes_every_frame_hil_replays(tmp_path):
    width, height, count = 320, 240, 12
    frames = [jpeg(picture(width, height).rotate(3 * i), subsampling=2) for i in range(count)]
    scene.write_mcap(tmp_path / "camera.mcap", ((scene.START_NS + i * 33_333_333, f) for i, f in enumerate(frames)))
    port = _free_udp_port()
    rig = Rig.model_validate({"name": "sim-camera", "buses": {"lan": {"kind": "ethernet", "emulated": True}},
                              "targets": {"hpc": {"kind": "hpc", "reach": {"via": "emulated"},
                                                  "networks": {"lan": {"address": TARGET, "ports": {"camera": port}}}}}})
    timeline = build_timeline(Stimulus.model_validate(
        {"sources": [{"file": str(tmp_path / "camera.mcap"), "map": {scene.CAMERA_TOPIC: "hpc.camera"}}]}), rig)
    out = tmp_path / "frames.rgb"
    gst = subprocess.Popen(
        ["gst-launch-1.0", "-q", "-e", "udpsrc", f"address={TARGET}", f"port={port}", f"caps={CAPS}",
         "!", "rtpjpegdepay", "!", "jpegdec", "!", "videoconvert", "!", "video/x-raw,format=RGB",
         "!", "filesink", f"location={out}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port) and time.monotonic() < deadline and gst.poll() is None:
            time.sleep(0.05)
        assert _listening(port), "GStreamer did not start listening"
        with RigBuses(rig, tmp_path / "run") as buses:
            _, report = inject(timeline, {}, buses, None)
        assert report.frames_sent == len(timeline.steps)
        time.sleep(0.5)  # the last frame through the pipeline before its end of stream
    finally:
        gst.send_signal(signal.SIGINT)
        _, err = gst.communicate(timeout=30)
    raw = out.read_bytes() if out.exists() else b""
    size = width * height * 3
    assert len(raw) == count * size, err.decode(errors="replace")
    for i in (0, count // 2, count - 1):
        decoded = np.frombuffer(raw[i * size:(i + 1) * size], np.uint8).reshape(height, width, 3).astype(np.int16)
        assert np.abs(decoded - pixels(frames[i])).mean() < 3  # this frame, not its neighbour
        assert np.abs(decoded - pixels(frames[(i + 1) % count])).mean() > 5
