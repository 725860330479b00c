"""The MCAP layout of a recording: topics, JSON schemas, and how one message is encoded.

Every message is JSON with a JSON Schema (``jsonschema`` schema encoding, ``json`` message encoding),
which Foxglove and the standard MCAP readers decode without plugins. Message ``log_time`` (and
``publish_time``, the same value) is the run clock (ns) of the frame — the end-of-frame time for
CAN.

=====================  ==================  =================================================
topic                  schema              message
=====================  ==================  =================================================
``/can/BUS``           ``hil.CanFrame``    ``{"id", "flags", "dlc", "data": [bytes as ints]}``
``/serial/BUS``        ``hil.SerialChunk`` ``{"data": base64}``, bytes read from the port
``/console``           ``foxglove.Log``    one console line; ``name`` is the source, level 3 = stderr
``/events``            ``hil.Event``       ``{"kind", "data"}``: faults, bench phases
``/injected/BUS``      ``hil.CanFrame``    frames the injector sent (its echoes), for FLAG_TX
``/net/NET``           ``hil.Datagram``    ``{"src", "dst", "data": base64}``: what the stack sent to
                                           a port hil listens on, stamped by the kernel on arrival
``/net-injected/NET``  ``hil.Datagram``    datagrams the injector sent, at their send time
=====================  ==================  =================================================

``flags`` holds the FLAG_* bits of :mod:`hil.recording.frames`. The file's ``hil`` metadata record
holds rig, suite, stack versions, host and the clock model.
"""

from __future__ import annotations

import base64
import json
from typing import Any

CAN_FRAME: dict[str, Any] = {
    "title": "hil.CanFrame",
    "description": "One CAN / CAN FD frame; log_time is its end-of-frame time on the run clock (ns).",
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "arbitration id"},
        "flags": {"type": "integer", "description": "1 extended, 2 remote, 4 error, 8 FD, 16 BRS, 32 ESI, 64 TX"},
        "dlc": {"type": "integer", "description": "payload length in bytes; for a remote frame (flags bit 0x02, "
                                                 "no data) the length it requests"},
        "data": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
    },
    "required": ["id", "flags", "dlc", "data"],
}
SERIAL_CHUNK: dict[str, Any] = {
    "title": "hil.SerialChunk",
    "description": "Bytes read from a serial bus in one go; log_time is when they were read (ns).",
    "type": "object",
    "properties": {"data": {"type": "string", "contentEncoding": "base64"}},
    "required": ["data"],
}
LOG: dict[str, Any] = {  # foxglove.Log, as published in foxglove/schemas (JSON Schema flavour)
    "title": "foxglove.Log",
    "description": "A log message",
    "type": "object",
    "properties": {
        "timestamp": {"type": "object", "properties": {"sec": {"type": "integer", "minimum": 0},
                                                         "nsec": {"type": "integer", "minimum": 0}}},
        "level": {"type": "integer", "description": "0 unknown, 1 debug, 2 info, 3 warning, 4 error, 5 fatal"},
        "message": {"type": "string"},
        "name": {"type": "string"},
        "file": {"type": "string"},
        "line": {"type": "integer", "minimum": 0},
    },
}
EVENT: dict[str, Any] = {
    "title": "hil.Event",
    "description": "Something that happened in the run: a fault armed or cleared, a bench phase.",
    "type": "object",
    "properties": {"kind": {"type": "string"}, "data": {"type": "object"}},
    "required": ["kind", "data"],
}
DATAGRAM: dict[str, Any] = {
    "title": "hil.Datagram",
    "description": "One UDP datagram on a network; log_time is when it was sent or received (run clock, ns).",
    "type": "object",
    "properties": {"src": {"type": "string", "description": "ADDRESS:PORT it came from"},
                   "dst": {"type": "string", "description": "ADDRESS:PORT it went to"},
                   "data": {"type": "string", "contentEncoding": "base64"}},
    "required": ["src", "dst", "data"],
}
SCHEMAS = {s["title"]: s for s in (CAN_FRAME, SERIAL_CHUNK, LOG, EVENT, DATAGRAM)}

CAN_PREFIX = "/can/"
SERIAL_PREFIX = "/serial/"
INJECTED_PREFIX = "/injected/"
NET_PREFIX = "/net/"
NET_INJECTED_PREFIX = "/net-injected/"
CONSOLE_TOPIC = "/console"
EVENTS_TOPIC = "/events"
METADATA_NAME = "hil"

LEVEL_INFO = 2
LEVEL_WARNING = 3


_DECIMAL = tuple(str(i).encode() for i in range(256))


def encode_can(can_id: int, flags: int, data: bytes, dlc: int | None = None) -> bytes:
    """The canonical JSON of a frame (the loader's fast path depends on this exact form); ``dlc``
    is a remote frame's requested length (a data frame's is its data's)."""
    return b'{"id":%d,"flags":%d,"dlc":%d,"data":[%s]}' % (
        can_id, flags, len(data) if dlc is None else dlc, b",".join([_DECIMAL[b] for b in data]))


def encode_serial(data: bytes) -> bytes:
    return b'{"data":"%s"}' % base64.b64encode(data)


def encode_datagram(src: str, dst: str, data: bytes) -> bytes:
    return b'{"src":"%s","dst":"%s","data":"%s"}' % (src.encode(), dst.encode(), base64.b64encode(data))


def decode_serial(payload: bytes) -> bytes:
    return base64.b64decode(json.loads(payload)["data"])


def encode_log(t_ns: int, source: str, text: str, stream: str) -> bytes:
    level = LEVEL_WARNING if stream == "stderr" else LEVEL_INFO
    return json.dumps({"timestamp": {"sec": t_ns // 1_000_000_000, "nsec": t_ns % 1_000_000_000},
                       "level": level, "message": text, "name": source, "file": "", "line": 0},
                      ensure_ascii=False).encode()


def encode_event(kind: str, data: dict) -> bytes:
    return json.dumps({"kind": kind, "data": data}, default=str).encode()


def schema_for(topic: str) -> str:
    """The schema title of a topic."""
    if topic.startswith((CAN_PREFIX, INJECTED_PREFIX)):
        return CAN_FRAME["title"]
    if topic.startswith(SERIAL_PREFIX):
        return SERIAL_CHUNK["title"]
    if topic.startswith((NET_PREFIX, NET_INJECTED_PREFIX)):
        return DATAGRAM["title"]
    return {CONSOLE_TOPIC: LOG["title"], EVENTS_TOPIC: EVENT["title"]}[topic]


def schema_bytes(title: str) -> bytes:
    return json.dumps(SCHEMAS[title]).encode()
