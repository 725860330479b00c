"""MCAP image channels as stimulus: every supported encoding read, frames become RTP/JPEG datagrams."""

from __future__ import annotations

import io
import json
import struct

import pytest
from mcap.writer import Writer

from hil.net.rtpjpeg import depacketize, rtp_timestamp
from hil.stimulus.camera import read_camera, read_images
from hil.stimulus.events import PacketEvent, RecordError

from .test_rtpjpeg import jpeg, picture, pixels

STAMP = 1_700_000_000_123_456_789


def _str(text: bytes, cdr: bool = False) -> bytes:
    body = text + b"\x00" if cdr else text
    return struct.pack("<I", len(body)) + body


def ros1(data: bytes, fmt: bytes = b"jpeg") -> bytes:
    return struct.pack("<III", 7, STAMP // 10**9, STAMP % 10**9) + _str(b"cam") + _str(fmt) + _str(data)


def ros2(data: bytes) -> bytes:
    body = struct.pack("<iI", STAMP // 10**9, STAMP % 10**9) + _str(b"cam", cdr=True)  # 12 + 4 = 16: aligned
    body += _str(b"jpeg", cdr=True) + b"\x00\x00\x00"  # 4 + 5, padded to 12
    return b"\x00\x01\x00\x00" + body + _str(data)


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes((n & 0x7F | 0x80,))
        n >>= 7
    return out + bytes((n,))


def protobuf(data: bytes) -> bytes:
    stamp = b"\x08" + _varint(STAMP // 10**9) + b"\x10" + _varint(STAMP % 10**9)
    return (b"\x0a" + _varint(len(stamp)) + stamp + b"\x22\x03cam" + b"\x1a\x04jpeg"
            + b"\x12" + _varint(len(data)) + data)


def foxglove_json(data: bytes) -> bytes:
    import base64

    return json.dumps({"timestamp": {"sec": STAMP // 10**9, "nsec": STAMP % 10**9}, "frame_id": "cam",
                       "format": "jpeg", "data": base64.b64encode(data).decode()}).encode()


ENCODINGS = {
    "foxglove-json": ("foxglove.CompressedImage", "jsonschema", "json", foxglove_json),
    "foxglove-protobuf": ("foxglove.CompressedImage", "protobuf", "protobuf", protobuf),
    "ros1": ("sensor_msgs/CompressedImage", "ros1msg", "ros1", ros1),
    "ros2": ("sensor_msgs/msg/CompressedImage", "ros2msg", "cdr", ros2),
}


def mcap(messages: list[tuple[str, int, bytes]], kind: str) -> io.BytesIO:
    """An MCAP with ``messages`` (topic, log time, payload) in the given encoding, plus a CAN-ish topic."""
    schema_name, schema_encoding, encoding, _ = ENCODINGS[kind]
    out = io.BytesIO()
    writer = Writer(out)
    writer.start()
    schema = writer.register_schema(schema_name, schema_encoding, b"")
    other = writer.register_channel("/other", "json", writer.register_schema("other", "jsonschema", b"{}"))
    channels: dict[str, int] = {}
    for topic, t, data in messages:
        ch = channels.setdefault(topic, writer.register_channel(topic, encoding, schema))
        writer.add_message(ch, log_time=t, publish_time=t, data=data)
    writer.add_message(other, log_time=5, publish_time=5, data=b"{}")
    writer.finish()
    out.seek(0)
    return out


@pytest.mark.parametrize("kind", ENCODINGS)
def test_every_encoding_gives_the_image_and_its_capture_time(kind):
    frame = jpeg()
    encode = ENCODINGS[kind][3]
    got = list(read_images(mcap([("/cam", STAMP + 5_000_000, encode(frame))], kind)))
    images = [i for _, i in got if not isinstance(i, str)]
    assert [i for _, i in got if isinstance(i, str)] == ["MCAP messages that are not compressed images (/other)"]
    assert len(images) == 1
    assert (images[0].capture_ns, images[0].log_ns, images[0].format, images[0].data) == \
        (STAMP, STAMP + 5_000_000, "jpeg", frame)


def test_frames_become_rtp_packets_at_their_log_time_one_stream_per_topic():
    frames = [jpeg(picture(64, 48)), jpeg(picture(64, 48), quality=30), jpeg(picture(80, 64))]
    msgs = [("/front", 1_000_000_000, ros1(frames[0])), ("/rear", 1_010_000_000, ros1(frames[2])),
            ("/front", 1_033_000_000, ros1(frames[1]))]
    out = [ev for _, ev in read_camera(mcap(msgs, "ros1"), mtu=300) if isinstance(ev, PacketEvent)]
    front = [ev for ev in out if ev.channel == "/front"]
    assert {ev.channel for ev in out} == {"/front", "/rear"}
    starts = [min(ev.t_ns for ev in front if ev.t_ns >= t) for t in (1_000_000_000, 1_033_000_000)]
    assert starts == [1_000_000_000, 1_033_000_000]  # a frame's first packet at its log time,
    first = [ev for ev in front if ev.t_ns < 1_033_000_000]
    # 1 Gbit/s on Ethernet: the payload and 66 bytes of UDP, IPv4 and Ethernet headers, preamble and gap
    assert [b.t_ns - a.t_ns for a, b in zip(first, first[1:])] == [(len(a.data) + 66) * 8 for a in first[:-1]]
    received = list(depacketize([ev.data for ev in front]))
    assert [r.index for r in received] == [0, 1]
    assert [r.timestamp for r in received] == [rtp_timestamp(STAMP)] * 2  # the header stamp, not the log time
    assert (pixels(received[1].jpeg) == pixels(frames[1])).all()


def test_images_rtp_jpeg_cannot_carry_are_refused_naming_the_message():
    with pytest.raises(RecordError, match="format 'png'") as exc:
        list(read_camera(mcap([("/cam", 1, ros1(b"\x89PNG", fmt=b"png"))], "ros1")))
    assert exc.value.where == "message 1"
    with pytest.raises(RecordError, match="'/cam': .*own Huffman tables"):
        list(read_camera(mcap([("/cam", 1, ros1(jpeg(optimize=True)))], "ros1")))
    with pytest.raises(RecordError, match="unreadable sensor_msgs/CompressedImage on '/cam'"):
        list(read_camera(mcap([("/cam", 1, ros1(jpeg())[:-10])], "ros1")))


def test_a_camera_mcap_on_the_timeline_goes_to_the_mapped_target_port(tmp_path):
    from hil.errors import StimulusError
    from hil.spec.rig import Rig
    from hil.spec.suite import Stimulus
    from hil.stimulus.timeline import build_timeline

    rig = Rig.model_validate({"name": "sim", "buses": {"lan": {"kind": "ethernet", "emulated": True}},
                              "targets": {"hpc": {"kind": "hpc", "reach": {"via": "emulated"},
                                                  "networks": {"lan": {"ports": {"camera": 5004}}}}}})
    path = tmp_path / "cam.mcap"
    path.write_bytes(mcap([("/front", 2_000_000_000 + i * 33_333_333, ros1(jpeg())) for i in range(3)], "ros1")
                     .getvalue())
    tl = build_timeline(Stimulus.model_validate({"sources": [{"file": str(path), "map": {"/front": "hpc.camera"}}]}),
                        rig)
    assert {(s.bus, s.event.to) for s in tl.steps} == {("lan", ("127.0.1.2", 5004))}
    assert [min(s.t_ns for s in tl.steps if s.t_ns >= t) for t in (0, 33_333_333, 66_666_666)] == \
        [0, 33_333_333, 66_666_666]
    assert [f.index for f in depacketize([s.event.data for s in tl.steps])] == [0, 1, 2]
    with pytest.raises(StimulusError, match="channel '/front' needs a 'map' entry .* hpc.camera"):
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(path)}]}), rig)
    with pytest.raises(StimulusError, match=r"source 1 \(cam.mcap\): its events are UDP datagrams .* 'include_ids'"):
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(path), "map": {"/front": "hpc.camera"},
                                                             "exclude_ids": [0x100]}]}), rig)


def test_a_truncated_camera_mcap_is_refused_as_unreadable(tmp_path):
    from hil.errors import StimulusError
    from hil.stimulus.readers import read_source

    path = tmp_path / "cam.mcap"
    path.write_bytes(mcap([("/front", 1, ros1(jpeg()))], "ros1").getvalue()[:-100])
    with pytest.raises(StimulusError, match=rf"^{path}: .*(truncated|unreadable)"):
        read_source(path)


def test_a_protobuf_field_of_the_wrong_wire_type_is_an_unreadable_message():
    """A CompressedImage whose format (field 3) came as a number, not text, is refused as unreadable
    (an AttributeError escaped the reader before)."""
    data = b"\x18\x05" + b"\x12\x01\xff"  # format = 5 (varint), data = b"\xff"
    with pytest.raises(RecordError, match="unreadable foxglove.CompressedImage on '/cam'"):
        list(read_images(mcap([("/cam", 1, data)], "foxglove-protobuf")))
