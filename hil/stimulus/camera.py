"""Camera frames from MCAP recordings as stimulus: JPEG image channels replayed as RTP/JPEG streams.

Image channels are those of the schemas ``foxglove.CompressedImage`` (JSON or protobuf encoding)
and ``sensor_msgs/CompressedImage`` (ROS 1) / ``sensor_msgs/msg/CompressedImage`` (ROS 2, CDR).
Each channel becomes one RTP stream (:mod:`hil.net.rtpjpeg`; its SSRC from the topic name): every
frame's packets are UDP datagrams whose channel is the topic, the first at the message's log time
and the others paced as a camera on a 1 Gbit/s link sends them (each packet's payload plus the
66 bytes of headers, preamble and gap Ethernet adds: a 200 kB frame takes 1.7 ms), not as one
burst that would make the last packet of a frame late by design. Each packet carries the
frame's capture time (the message's header stamp / timestamp) in the RTP timestamp and its index
on the topic (from 0) in the frame-index extension. Messages on other channels are accounted for as
left out; an image that is not a baseline JPEG RFC 2435 can carry is
refused with the reason.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from hil.net.rtpjpeg import DEFAULT_MTU, JpegError, RtpJpegSender
from hil.stimulus.events import Event, PacketEvent, RecordError

FOXGLOVE = "foxglove.CompressedImage"
ROS1, ROS2 = "sensor_msgs/CompressedImage", "sensor_msgs/msg/CompressedImage"


@dataclass(frozen=True)
class CameraImage:
    """One compressed image of a recording: when it was logged and captured (ns), its format and bytes."""

    log_ns: int
    topic: str
    capture_ns: int
    format: str
    data: bytes


def read_images(stream: BinaryIO) -> Iterator[tuple[int, CameraImage | str]]:
    """(message number, image or why the message is left out) for every message of an MCAP stream."""
    from mcap.reader import make_reader

    for n, (schema, channel, message) in enumerate(make_reader(stream).iter_messages(log_time_order=True), 1):
        name = schema.name if schema else ""
        decode = _DECODERS.get((name, channel.message_encoding))
        if decode is None:
            yield n, f"MCAP messages that are not compressed images ({channel.topic})"
            continue
        try:
            capture_ns, fmt, data = decode(message.data)
        except (ValueError, KeyError, TypeError, struct.error, IndexError) as exc:
            raise RecordError(f"message {n}", f"unreadable {name} on {channel.topic!r} "
                                              f"({type(exc).__name__}: {exc})") from None
        yield n, CameraImage(message.log_time, channel.topic, capture_ns or message.log_time, fmt, data)


LINK_BPS = 1_000_000_000  # the camera's link: a frame's packets are paced at this rate
WIRE_BYTES = 8 + 20 + 14 + 4 + 8 + 12  # what a datagram takes on Ethernet beside its payload: UDP and IPv4
# headers, Ethernet header and FCS, preamble and start delimiter, inter-frame gap (IEEE 802.3)


def read_camera(stream: BinaryIO, mtu: int = DEFAULT_MTU, link_bps: int = LINK_BPS) -> Iterator[tuple[int, Event | str]]:
    """(message number, RTP packet event or why left out) for an MCAP stream: the reader driver's
    form (:func:`hil.stimulus.readers.read_source`); one message gives a frame's packets, paced at
    ``link_bps`` from the message's log time: each is due when the ones before it have left the
    camera's link, headers, preamble and gap included (no NIC sends faster)."""
    senders: dict[str, RtpJpegSender] = {}
    counts: dict[str, int] = {}
    for n, image in read_images(stream):
        if isinstance(image, str):
            yield n, image
            continue
        if "jpeg" not in image.format.lower() and "jpg" not in image.format.lower():
            raise RecordError(f"message {n}", f"image of format {image.format!r} on {image.topic!r}: "
                                              "RTP/JPEG carries JPEG images only")
        sender = senders.setdefault(image.topic, RtpJpegSender(zlib.crc32(image.topic.encode()), mtu))
        index = counts.get(image.topic, 0)
        counts[image.topic] = index + 1
        try:
            packets = sender.packets(image.data, image.capture_ns, index)
        except JpegError as exc:
            raise RecordError(f"message {n}", f"image on {image.topic!r}: {exc}") from None
        bits = 0
        for packet in packets:
            yield n, PacketEvent(image.log_ns + bits * 1_000_000_000 // link_bps, image.topic, packet)
            bits += 8 * (len(packet) + WIRE_BYTES)


def _foxglove_json(data: bytes) -> tuple[int, str, bytes]:
    msg = json.loads(data)
    stamp = msg.get("timestamp") or {}
    return (int(stamp.get("sec", 0)) * 1_000_000_000 + int(stamp.get("nsec", 0)), str(msg.get("format", "")),
            base64.b64decode(msg["data"], validate=True))


def _protobuf_fields(data: bytes) -> dict[int, int | bytes]:
    """The last value of each field of a protobuf message (varints and length-delimited only)."""
    fields: dict[int, int | bytes] = {}
    at = 0

    def varint() -> int:
        nonlocal at
        value = shift = 0
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while at < len(data):
        key = varint()
        if key & 7 == 0:
            fields[key >> 3] = varint()
        elif key & 7 == 2:
            length = varint()
            fields[key >> 3] = data[at:at + length]
            at += length
        else:
            raise ValueError(f"protobuf wire type {key & 7} where CompressedImage has none")
    return fields


def _foxglove_protobuf(data: bytes) -> tuple[int, str, bytes]:
    msg = _protobuf_fields(data)  # timestamp = 1, data = 2, format = 3
    stamp = _protobuf_fields(_typed(msg, 1, bytes, b""))  # seconds = 1, nanos = 2
    return (_typed(stamp, 1, int, 0) * 1_000_000_000 + _typed(stamp, 2, int, 0),
            _typed(msg, 3, bytes, b"").decode(), _typed(msg, 2, bytes, b""))


_F = TypeVar("_F")  # a protobuf field's Python type


def _typed(fields: dict[int, int | bytes], number: int, kind: type[_F], default: _F) -> _F:
    """Field ``number`` of a decoded message, if its wire type is ``kind``'s (a TypeError if not)."""
    value = fields.get(number, default)
    if not isinstance(value, kind):
        raise TypeError(f"protobuf field {number} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _ros1(data: bytes) -> tuple[int, str, bytes]:
    _seq, sec, nsec, frame_len = struct.unpack_from("<IIII", data)
    at = 16 + frame_len
    (fmt_len,) = struct.unpack_from("<I", data, at)
    fmt = data[at + 4:at + 4 + fmt_len].decode()
    at += 4 + fmt_len
    (size,) = struct.unpack_from("<I", data, at)
    return sec * 1_000_000_000 + nsec, fmt, _exact(data, at + 4, size)


def _ros2(data: bytes) -> tuple[int, str, bytes]:
    order = {b"\x00\x01": "<", b"\x00\x00": ">"}[data[:2]]  # plain CDR, little / big endian
    body = data[4:]
    sec, nsec, frame_len = struct.unpack_from(order + "iII", body)
    at = -(-(12 + frame_len) // 4) * 4
    (fmt_len,) = struct.unpack_from(order + "I", body, at)
    fmt = body[at + 4:at + 3 + fmt_len].decode()  # without the terminating NUL
    at = -(-(at + 4 + fmt_len) // 4) * 4
    (size,) = struct.unpack_from(order + "I", body, at)
    return sec * 1_000_000_000 + nsec, fmt, _exact(body, at + 4, size)


def _exact(data: bytes, at: int, size: int) -> bytes:
    if at + size > len(data):
        raise ValueError(f"image data of {size} bytes, {len(data) - at} in the message")
    return data[at:at + size]


_DECODERS = {(FOXGLOVE, "json"): _foxglove_json, (FOXGLOVE, "protobuf"): _foxglove_protobuf,
             (ROS1, "ros1"): _ros1, (ROS2, "cdr"): _ros2}


def has_images(stream: BinaryIO) -> bool:
    """Whether an MCAP stream (its summary) has a compressed-image channel; the stream is rewound.
    A file whose summary cannot be read has none: reading it as a recording says what is wrong."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader

    try:
        summary = make_reader(stream).get_summary()
    except (McapError, ValueError, EOFError, struct.error):
        return False
    finally:
        stream.seek(0)
    return summary is not None and any(
        (summary.schemas[c.schema_id].name if c.schema_id in summary.schemas else "", c.message_encoding) in _DECODERS
        for c in summary.channels.values())
