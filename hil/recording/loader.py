"""Recording → numpy columns per bus, console lines, events and metadata.

Walks the MCAP records front to back (memory-mapped), so a file whose writer was killed loads up
to its last flush (hil's writer keeps a footer after every flush) — or, written by another tool and
cut anywhere, up to its last complete chunk. ``Recording.complete`` says whether the file was closed
properly (its data section ends with a Data End record), and :attr:`Recording.cut` what a file that
was not holds. Message payloads are decoded a whole topic at a time (one JSON parse per topic, not
per frame), which keeps loading fast.
"""

from __future__ import annotations

import base64
import gc
import io
import json
import mmap
import re
import struct
import zlib
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.opcode import Opcode
from mcap.data_stream import ReadDataStream
from mcap.records import Channel, Chunk, DataEnd, Footer, Message, Metadata
from mcap.writer import MCAP0_MAGIC as MAGIC

from hil.errors import RecordingError
from hil.recording import schema
from hil.canframe import FLAG_REMOTE, FLAG_TX
from hil.recording.frames import DATA_WIDTH, Frames
from hil.values import ConsoleLine

_RECORD = struct.Struct("<BQ")
_MESSAGE = struct.Struct("<HIQQ")
_CHANNEL = struct.Struct("<HHI")


@dataclass(frozen=True)
class RecordedEvent:
    t_ns: int
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Datagram:
    """A UDP datagram of a recorded network: ``injected`` (hil sent it, at ``t_ns``) or what the
    stack sent to a port hil listens on (kernel arrival at ``t_ns``)."""

    t_ns: int
    src: str  # "ADDRESS:PORT"
    dst: str
    data: bytes
    injected: bool


@dataclass
class Recording:
    """A loaded recording. ``buses`` lists the recorded CAN buses; ``serial`` maps serial bus →
    ``[(t_ns, bytes), ...]``."""

    path: Path
    metadata: dict[str, str]
    complete: bool
    can: dict[str, Frames] = field(default_factory=dict)
    serial: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    consoles: list[ConsoleLine] = field(default_factory=list)
    events: list[RecordedEvent] = field(default_factory=list)
    datagrams: dict[str, list[Datagram]] = field(default_factory=dict)  # network → its datagrams in time order
    other_topics: dict[str, int] = field(default_factory=dict)  # topic → messages on it, not hil's
    end_ns: int = 0  # the last message's time

    @property
    def buses(self) -> list[str]:
        return sorted(self.can)

    @property
    def started_ns(self) -> int:
        """When the recording started (run clock; 0 if it does not say)."""
        return int(self.metadata.get("started_ns", 0) or 0)

    @property
    def epoch_offset_ns(self) -> int | None:
        """The wall-clock anchor: Unix ns = run-clock ns + this (None in recordings made before
        hil recorded it)."""
        text = self.metadata.get("epoch_offset_ns")
        return int(text) if text else None

    @property
    def cut(self) -> str | None:
        """For a recording that was not closed: what it holds, and that the rest is lost (None when
        it was closed properly)."""
        if self.complete:
            return None
        start = self.started_ns
        span = f"{(self.end_ns - start) / 1e9:.3f} s after the recording started" if start else "its last flush"
        phases = [e.data.get("phase") for e in self.events if e.kind == "phase"]
        phase = f" (bench phase: {phases[-1]})" if phases else ""
        return (f"{self.path} was not closed (its writer was killed?): it holds what was written up to "
                f"{span}{phase}; whatever came after is lost")

    def frames(self, bus: str) -> Frames:
        if bus not in self.can:
            raise RecordingError(f"{self.path}: no CAN bus {bus!r} in the recording; "
                                 f"it has: {', '.join(self.buses) or 'none'}")
        return self.can[bus]


def load(path: str | Path, strict: bool = False, fileobj: Any = None, expand_limit: int | None = None) -> Recording:
    """Load a recording. ``strict``: a file cut short (no footer) is an error instead of being
    read up to its last complete record. ``fileobj``: the file already open (checked by
    :mod:`hil.files`); ``expand_limit``: refuse chunks that inflate to more bytes than this in all."""
    with _gc_paused():  # millions of short-lived objects: collections would double the time
        return _load(Path(path), strict, fileobj, expand_limit)


@contextmanager
def _gc_paused():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(path: Path, strict: bool, fileobj: Any, expand_limit: int | None) -> Recording:
    topics: dict[int, str] = {}
    payloads: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    metadata: dict[str, str] = {}
    complete = False
    count = expanded = 0
    try:
        with (nullcontext(fileobj) if fileobj is not None else open(path, "rb")) as f, \
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as raw:
            for r in _records(raw, path):
                count += 1
                if isinstance(r, Chunk):
                    expanded += r.uncompressed_size
                    if expand_limit is not None and expanded > expand_limit:
                        raise RecordingError(f"{path}: record {count}: the chunks expand to more than "
                                             f"{expand_limit >> 20} MiB; refusing to inflate more")
                    _read_chunk(r, topics, payloads)
                elif isinstance(r, Message):
                    payloads[topics[r.channel_id]].append((r.log_time, r.data))
                elif isinstance(r, Channel):
                    topics[r.id] = r.topic
                elif isinstance(r, Metadata) and r.name == schema.METADATA_NAME:
                    metadata = dict(r.metadata)
                elif isinstance(r, DataEnd):  # a flushed file ends with a footer too, but without this
                    complete = True
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such recording") from None
    except ValueError as exc:  # mmap of an empty file
        raise RecordingError(f"{path}: not an MCAP file ({exc})") from None
    except _Cut as cut:
        if strict:
            raise RecordingError(f"{path}: the file ends inside record {count + 1} (at byte {cut.at}); "
                                 "it is truncated") from None
    except RecordingError:
        raise
    except Exception as exc:  # a corrupt record: keep what came before it
        if strict or count == 0:
            raise RecordingError(f"{path}: record {count + 1}: unreadable MCAP ({type(exc).__name__}: "
                                 f"{exc}); {count} record(s) read before it") from None
    if strict and not complete:
        raise RecordingError(f"{path}: the file ends after record {count} without the end of its data "
                             "section; it is truncated")
    return _assemble(path, metadata, complete, payloads)


class _Cut(Exception):
    def __init__(self, at: int):
        self.at = at


_READERS = {Opcode.CHUNK: Chunk.read, Opcode.CHANNEL: Channel.read, Opcode.METADATA: Metadata.read,
            Opcode.DATA_END: DataEnd.read, Opcode.FOOTER: Footer.read}


def _records(raw, path: Path):
    """The top-level records the loader needs, each parsed by the mcap library. Index and summary
    records are skipped without parsing: they only speed up seeking, and parsing the message
    indexes costs as much as the messages themselves; padding and other private records too."""
    if raw[:len(MAGIC)] != MAGIC:
        raise RecordingError(f"{path}: not an MCAP file (no MCAP magic at the start)")
    pos, size = len(MAGIC), len(raw)
    while pos < size:
        if pos + _RECORD.size > size:
            raise _Cut(pos)
        opcode, length = _RECORD.unpack_from(raw, pos)
        body = pos + _RECORD.size
        if body + length > size:
            raise _Cut(pos)
        if opcode == Opcode.MESSAGE:
            yield Message.read(ReadDataStream(io.BytesIO(raw[body:body + length])), length)
        elif opcode in _READERS:
            yield _READERS[opcode](ReadDataStream(io.BytesIO(raw[body:body + length])))
        if opcode == Opcode.FOOTER:
            return
        pos = body + length


def _assemble(path: Path, metadata: dict[str, str], complete: bool,
              payloads: dict[str, list[tuple[int, bytes]]]) -> Recording:
    rec = Recording(path, metadata, complete,
                    end_ns=max((max(_times(items)) for items in payloads.values() if items), default=0))
    for bus, clock in _json_object(metadata.get("bus_clocks")).items():  # recorded, if silent
        if not str(clock).startswith(("serial", "net")):
            rec.can[bus] = Frames.empty(bus)
    injected = {t[len(schema.INJECTED_PREFIX):]: _frames(t, p) for t, p in payloads.items()
                if t.startswith(schema.INJECTED_PREFIX)}
    for topic, items in payloads.items():
        if topic.startswith(schema.CAN_PREFIX):
            bus = topic[len(schema.CAN_PREFIX):]
            rec.can[bus] = _mark_tx(_frames(bus, items), injected.get(bus))
        elif topic.startswith(schema.SERIAL_PREFIX):
            rec.serial[topic[len(schema.SERIAL_PREFIX):]] = sorted(
                (t, schema.decode_serial(p)) for t, p in items)
        elif topic == schema.CONSOLE_TOPIC:
            rec.consoles = [ConsoleLine(t, m["name"], m["message"],
                                        "stderr" if m["level"] >= schema.LEVEL_WARNING else "stdout")
                            for t, m in zip(_times(items), _decode(items))]
            rec.consoles.sort(key=lambda c: c.t_ns)
        elif topic == schema.EVENTS_TOPIC:
            rec.events = sorted((RecordedEvent(t, m["kind"], m["data"]) for t, m in zip(_times(items), _decode(items))),
                                key=lambda e: e.t_ns)
        elif topic.startswith((schema.NET_PREFIX, schema.NET_INJECTED_PREFIX)):
            sent = topic.startswith(schema.NET_INJECTED_PREFIX)
            rec.datagrams.setdefault(topic.split("/", 2)[2], []).extend(
                Datagram(t, m["src"], m["dst"], base64.b64decode(m["data"]), sent)
                for t, m in zip(_times(items), _decode(items)))
        elif not topic.startswith(schema.INJECTED_PREFIX):
            rec.other_topics[topic] = len(items)
    for datagrams in rec.datagrams.values():
        datagrams.sort(key=lambda d: d.t_ns)
    return rec


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _read_chunk(chunk: Chunk, topics: dict[int, str], payloads: dict[str, list[tuple[int, bytes]]]) -> None:
    """Add every message of a chunk to ``payloads`` (and its channel records to ``topics``).

    The mcap library builds an object per record, which dominates loading; the record layout is
    fixed by the MCAP spec (opcode u8, length u64, then channel u16, sequence u32, log time u64,
    publish time u64, data), so messages are sliced out directly; schema records are skipped."""
    raw = _decompress(chunk)
    if chunk.uncompressed_crc and zlib.crc32(raw) != chunk.uncompressed_crc:
        raise RecordingError(f"chunk at log time {chunk.message_start_time}: CRC mismatch; the file is corrupt")
    pos, end, head, msg = 0, len(raw), _RECORD.unpack_from, _MESSAGE.unpack_from
    lists: dict[int, list] = {}
    skip = _RECORD.size + _MESSAGE.size
    while pos < end:
        opcode, length = head(raw, pos)
        if opcode == Opcode.MESSAGE:
            channel_id, _, log_time, _ = msg(raw, pos + _RECORD.size)
            out = lists.get(channel_id)
            if out is None:
                out = lists[channel_id] = payloads[topics[channel_id]]
            out.append((log_time, raw[pos + skip: pos + _RECORD.size + length]))
        elif opcode == Opcode.CHANNEL:  # id u16, schema id u16, topic (u32 length + utf-8), ...
            channel_id, _, n = _CHANNEL.unpack_from(raw, pos + _RECORD.size)
            start = pos + _RECORD.size + _CHANNEL.size
            topics[channel_id] = raw[start: start + n].decode()
        pos += _RECORD.size + length
    if pos != end:
        raise RecordingError(f"chunk at log time {chunk.message_start_time}: a record runs past its end")


def _decompress(chunk: Chunk) -> bytes:
    """The chunk's records: inflated at most to the size the chunk states (plus one byte, to tell
    a lie), in steps of 1 MiB, so a forged size claim cannot make it allocate or expand unbounded."""
    if chunk.compression == "zstd":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(chunk.data) as reader:
            raw = _drain(reader.read, chunk.uncompressed_size)
    elif chunk.compression == "lz4":
        import lz4.frame

        inflate = lz4.frame.LZ4FrameDecompressor()
        data = [chunk.data]
        raw = _drain(lambda n: b"" if inflate.eof else inflate.decompress(data.pop() if data else b"", max_length=n),
                     chunk.uncompressed_size)
    elif chunk.compression == "":
        raw = chunk.data
    else:
        raise RecordingError(f"unsupported chunk compression {chunk.compression!r}")
    if len(raw) != chunk.uncompressed_size:
        raise RecordingError(f"chunk at log time {chunk.message_start_time}: it says it holds "
                             f"{chunk.uncompressed_size} bytes, it holds {len(raw)}; the file is corrupt")
    return raw


def _drain(read, size: int) -> bytes:
    """At most ``size + 1`` bytes from ``read(n)``, asked for 1 MiB at a time."""
    parts, n = [], 0
    while n <= size:
        part = read(min(1 << 20, size + 1 - n))
        if not part:
            break
        parts.append(part)
        n += len(part)
    return b"".join(parts)


def _times(items: list[tuple[int, bytes]]) -> list[int]:
    return [t for t, _ in items]


def _decode(items: list[tuple[int, bytes]]) -> list[dict]:
    return json.loads(b"[" + b",".join(p for _, p in items) + b"]")


def _frames(bus: str, items: list[tuple[int, bytes]]) -> Frames:
    n = len(items)
    t_ns = np.fromiter((t for t, _ in items), np.int64, n)
    ids, flags, dlc, data = _columns_fast(items) or _columns_json(items)
    order = np.argsort(t_ns, kind="stable")
    return Frames(bus, t_ns[order], ids[order], flags[order], dlc[order], data[order])


_CAN_RE = re.compile(rb'\{"id":(\d+),"flags":(\d+),"dlc":(\d+),"data":\[([\d,]*)\]\}')


def _columns_fast(items: list[tuple[int, bytes]]):
    """Columns from payloads in the recorder's own canonical form (one regex pass, numpy for the
    bytes); None when any payload is not in that form (then JSON decoding does it)."""
    n = len(items)
    rows = _CAN_RE.findall(b"\n".join(p for _, p in items))
    if len(rows) != n:
        return None
    ids, flags, dlc, payload = zip(*rows) if rows else ((), (), (), ())
    as_int = lambda col: np.array(col, dtype=np.bytes_).astype(np.int64) if n else np.zeros(0, np.int64)
    dlc_a, flags_a = as_int(dlc), as_int(flags)
    sizes = np.where(flags_a & FLAG_REMOTE, 0, dlc_a)  # a remote frame's DLC is the length it asks for
    flat = np.fromstring(b",".join(p for p in payload if p), dtype=np.int64, sep=",") if n else np.zeros(0, np.int64)
    if len(flat) != int(sizes.sum()):
        return None
    data = np.zeros((n, DATA_WIDTH), np.uint8)
    row = np.repeat(np.arange(n), sizes)
    col = np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    data[row, col] = flat
    return as_int(ids).astype(np.uint32), flags_a.astype(np.uint8), dlc_a.astype(np.uint8), data


def _columns_json(items: list[tuple[int, bytes]]):
    decoded = _decode(items)
    n = len(decoded)
    ids = np.fromiter((m["id"] for m in decoded), np.uint32, n)
    flags = np.fromiter((m["flags"] for m in decoded), np.uint8, n)
    dlc = np.fromiter((m["dlc"] for m in decoded), np.uint8, n)
    data = np.zeros((n, DATA_WIDTH), np.uint8)
    for row, m in zip(data, decoded):
        row[:len(m["data"])] = m["data"]
    return ids, flags, dlc, data


def _mark_tx(frames: Frames, injected: Frames | None) -> Frames:
    """Set FLAG_TX on frames whose (time, id) match the injector's echoes."""
    if injected is None or not len(injected) or not len(frames):
        return frames
    sent = set(zip(injected.t_ns.tolist(), injected.id.tolist()))
    candidates = np.flatnonzero(np.isin(frames.t_ns, injected.t_ns))
    hits = [i for i in candidates.tolist() if (int(frames.t_ns[i]), int(frames.id[i])) in sent]
    flags = frames.flags.copy()
    flags[hits] |= FLAG_TX
    return Frames(frames.bus, frames.t_ns, frames.id, flags, frames.dlc, frames.data)
