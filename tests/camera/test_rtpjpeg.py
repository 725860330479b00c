"""RTP/JPEG (RFC 2435): what is sent decodes to the same picture, in our receiver and in GStreamer's."""

from __future__ import annotations

import io
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from hil.net.rtpjpeg import JpegError, RtpJpegSender, depacketize, parse_packet, rtp_timestamp, split_jpeg


def picture(width: int = 320, height: int = 240) -> Image.Image:
    """A picture with detail in every channel, so the scan data is not trivial."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x ^ y) & 0xFF], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def jpeg(img: Image.Image | None = None, **options) -> bytes:
    out = io.BytesIO()
    (img or picture()).save(out, "JPEG", **{"quality": 85, **options})
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("subsampling", [1, 2])  # Pillow: 1 = 4:2:2, 2 = 4:2:0
def test_frames_come_back_pixel_identical_with_index_and_capture_time(subsampling):
    frames = [jpeg(picture(), subsampling=subsampling), jpeg(picture(160, 96), subsampling=subsampling, quality=40)]
    sender = RtpJpegSender(ssrc=0x1234, mtu=600, first_sequence=65530)
    packets = [p for i, f in enumerate(frames) for p in sender.packets(f, 1_700_000_000_000_000_000 + i * 33_333_333, i + 7)]
    assert all(len(p) <= 600 for p in packets) and len(packets) > 4
    seqs = [parse_packet(p).sequence for p in packets]
    assert seqs == [(65530 + i) & 0xFFFF for i in range(len(packets))]  # wraps
    got = list(depacketize(packets))
    assert [f.index for f in got] == [7, 8]
    assert [f.timestamp for f in got] == [rtp_timestamp(1_700_000_000_000_000_000 + i * 33_333_333) for i in range(2)]
    for sent, came in zip(frames, got):
        assert np.array_equal(pixels(sent), pixels(came.jpeg))


def test_a_frame_with_a_lost_packet_is_dropped_and_datagrams_that_are_not_rtp_jpeg_are_skipped():
    sender = RtpJpegSender(ssrc=1, mtu=400)
    first, second = sender.packets(jpeg(), 0, 0), sender.packets(jpeg(), 33_333_333, 1)
    got = list(depacketize(first[:2] + first[3:] + second))
    assert [f.index for f in got] == [1]
    noise = [b"", b"hello", bytes(20), b"\x80\x60" + bytes(30)]  # not RTP, too short, another payload type
    assert [f.index for f in depacketize(noise + first + noise[1:2] + second)] == [0, 1]


def test_rtp_timestamp_is_90_khz_of_the_capture_time():
    assert rtp_timestamp(1_000_000_000) == 90_000
    assert rtp_timestamp(11_111) == 0 and rtp_timestamp(11_112) == 1
    assert rtp_timestamp(-(-(1 << 32) * 100_000 // 9)) == 0  # wraps at 32 bits


@pytest.mark.parametrize("options, words", [
    ({"progressive": True}, "not a baseline JPEG"),
    ({"optimize": True}, "own Huffman tables"),
    ({"subsampling": 0}, "sampling (1, 1)"),
    ({"restart_marker_blocks": 4}, "restart interval"),
])
def test_jpegs_rfc_2435_cannot_carry_are_refused_with_what_was_found(options, words):
    with pytest.raises(JpegError, match=words.replace("(", r"\(").replace(")", r"\)")):
        split_jpeg(jpeg(**options))


def test_grayscale_odd_sizes_and_non_jpegs_are_refused():
    with pytest.raises(JpegError, match="1 component"):
        split_jpeg(jpeg(picture().convert("L")))
    with pytest.raises(JpegError, match="multiples of 8 up to 2040"):
        split_jpeg(jpeg(picture(100, 64)))
    with pytest.raises(JpegError, match="multiples of 8 up to 2040"):
        split_jpeg(jpeg(picture(2048, 64)))
    with pytest.raises(JpegError, match="no start-of-image"):
        split_jpeg(b"\x89PNG")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not shutil.which("gst-launch-1.0"), reason="GStreamer (gstreamer1.0-tools, -plugins-good) not installed")
def test_gstreamer_rtpjpegdepay_decodes_the_stream(tmp_path):
    """The stock receiver: udpsrc → rtpjpegdepay → jpegdec, raw RGB frames written to a file."""
    width, height = 320, 240
    sent = jpeg(picture(width, height), subsampling=2)
    port, out = _free_udp_port(), tmp_path / "frames.rgb"
    caps = "application/x-rtp,media=video,encoding-name=JPEG,clock-rate=90000,payload=26"
    gst = subprocess.Popen(
        ["gst-launch-1.0", "-q", "-e", "udpsrc", "address=127.0.0.1", f"port={port}", f"caps={caps}",
         "!", "rtpjpegdepay", "!", "jpegdec", "!", "videoconvert", "!", "video/x-raw,format=RGB",
         "!", "filesink", f"location={out}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sender, frame_bytes = RtpJpegSender(ssrc=0xCAFE), width * height * 3
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            deadline = time.monotonic() + 60  # the receiver starts listening when it likes: send until it has 3 frames
            index = 0
            while (not out.exists() or out.stat().st_size < 3 * frame_bytes) and time.monotonic() < deadline:
                for packet in sender.packets(sent, index * 33_333_333, index):
                    udp.sendto(packet, ("127.0.0.1", port))
                index += 1
                time.sleep(0.05)
    finally:
        gst.send_signal(signal.SIGINT)
        _, err = gst.communicate(timeout=30)
    raw = out.read_bytes() if out.exists() else b""
    assert len(raw) >= 3 * frame_bytes, err.decode(errors="replace")
    decoded = np.frombuffer(raw[:frame_bytes], np.uint8).reshape(height, width, 3).astype(np.int16)
    assert np.abs(decoded - pixels(sent)).mean() < 3  # another decoder (IDCT, upsampling) may differ slightly


def test_standard_huffman_tables_are_accepted_in_any_order_and_segmentation():
    """Pillow writes one DHT segment per table; other encoders write all four in one, in any order."""
    data = jpeg()
    first = at = data.index(b"\xff\xc4")
    tables = []
    while data[at:at + 2] == b"\xff\xc4":
        end = at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
        tables.append(data[at + 4:end])
        at = end
    assert len(tables) == 4
    body = b"".join(reversed(tables))
    merged = data[:first] + b"\xff\xc4" + (len(body) + 2).to_bytes(2, "big") + body + data[at:]
    frames = list(depacketize(RtpJpegSender(ssrc=1).packets(merged, 0, 0)))
    assert np.array_equal(pixels(frames[0].jpeg), pixels(data))
