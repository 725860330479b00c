"""A chunked MCAP writer whose message path costs one ``struct.pack`` per message, and whose file
every MCAP reader reads in full up to the last flush, however the writer is killed.

mcap's own ``Writer`` builds a ``Message`` object, updates statistics and writes the record
through several small writes for every message, which caps a recorder at a few ten thousand frames
per second in Python. Here a message is packed straight into the open chunk's buffer; everything
else — header, schemas, channels, chunk and index records, statistics, summary, footer — is
serialised by mcap's record classes, and the file layout is the one mcap's ``Writer`` produces
(chunks followed by their message indexes, then the summary with offsets), so every MCAP reader
(Foxglove, ``mcap`` CLI, ``mcap.reader``) reads it with its indexes.

**A file that is always whole.** A reader seeking the summary reads the last 37 bytes of the file
as the footer; in a file cut by SIGKILL they were chunk bytes, and mcap's ``make_reader(f)
.iter_messages()`` gave up (``RecordLengthLimitExceeded``) without a single message. So the file
ends with a footer after every flush: a footer without a summary (``summary_start`` 0), which sends
readers through the records front to back, up to that footer. Each flush *commits* its records in
three writes, each of which leaves a readable file if the process dies right after it:

1. the new footer and magic at the new end of the file (the file grows; readers still stop at the
   old footer, which comes first);
2. the new records, into the gap between the old footer and the new one;
3. the old footer's first 9 bytes become the header of a padding record (a private opcode, which
   readers skip) that spans the old footer and magic — now the new records are reached.

Step 3 is the commit, and it must not be torn: a write is cut by a kill only between pages, so a
footer never straddles a page boundary (a padding record after the records moves it when it would).
A flushed file has no Data End record: :meth:`finish` commits it with the summary, then points the
footer at the summary (one write within a page), so a reader can tell a finished file from a cut one.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import defaultdict
from typing import Any, BinaryIO

import zstandard
from mcap.data_stream import RecordBuilder
from mcap.opcode import Opcode
from mcap.records import (Channel, Chunk, ChunkIndex, DataEnd, Footer, Header, MessageIndex, Metadata,
                          MetadataIndex, Schema, Statistics, SummaryOffset)
from mcap.writer import MCAP0_MAGIC

_MESSAGE = struct.Struct("<BQHIQQ")  # opcode, record length, channel, sequence, log time, publish time
_MESSAGE_FIXED = _MESSAGE.size - 9
_RECORD = struct.Struct("<BQ")  # opcode, record length
PAD_OPCODE = 0xF8  # a private record (0x80-0xFF are the applications'): padding, skipped by readers
PAGE = 4096  # a write is torn by a kill only at page boundaries (the kernel copies page by page)


class McapWriter:
    """Write an MCAP file to ``stream`` (a file opened for writing, written through its descriptor
    at explicit offsets): :meth:`start`, then schemas / channels / metadata / messages,
    :meth:`flush` to close the open chunk and commit it, :meth:`finish` for the summary."""

    def __init__(self, stream: BinaryIO, chunk_size: int = 512 * 1024, library: str = "hil"):
        self._fd = stream.fileno()
        self._end = 0  # where the footer that ends the file starts
        self._chunk_size = chunk_size
        self._library = library
        self._zstd = zstandard.ZstdCompressor()
        self._schemas: dict[int, Schema] = {}
        self._channels: dict[int, Channel] = {}
        self._chunk = bytearray()
        self._index: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self._start_time: int | None = None
        self._end_time = 0
        self._chunk_indexes: list[ChunkIndex] = []
        self._metadata_indexes: list[MetadataIndex] = []
        self._counts: dict[int, int] = defaultdict(int)
        self._first_time: int | None = None
        self._last_time = 0

    # -- records ---------------------------------------------------------------------------------
    def start(self) -> None:
        head = MCAP0_MAGIC + _record_bytes(Header(profile="", library=self._library))
        self._write_at(0, head + _FLUSHED_END)  # a few hundred bytes: one write, never torn
        self._end = len(head)

    def register_schema(self, name: str, encoding: str, data: bytes) -> int:
        schema = Schema(id=len(self._schemas) + 1, name=name, encoding=encoding, data=data)
        self._schemas[schema.id] = schema
        self._chunk += _record_bytes(schema)
        return schema.id

    def register_channel(self, topic: str, message_encoding: str, schema_id: int) -> int:
        channel = Channel(id=len(self._channels) + 1, topic=topic, message_encoding=message_encoding,
                          schema_id=schema_id, metadata={})
        self._channels[channel.id] = channel
        self._chunk += _record_bytes(channel)
        return channel.id

    def add_metadata(self, name: str, data: dict[str, str]) -> None:
        """A metadata record between chunks (the open chunk is closed first)."""
        self.flush()
        raw = _record_bytes(Metadata(name=name, metadata=data))
        self._metadata_indexes.append(MetadataIndex(offset=self._next, length=len(raw), name=name))
        self._commit(raw)

    def add_message(self, channel_id: int, log_time: int, data: bytes) -> None:
        chunk = self._chunk
        self._index[channel_id].append((log_time, len(chunk)))
        chunk += _MESSAGE.pack(Opcode.MESSAGE, _MESSAGE_FIXED + len(data), channel_id, 0, log_time, log_time)
        chunk += data
        if self._start_time is None or log_time < self._start_time:
            self._start_time = log_time
        if log_time > self._end_time:
            self._end_time = log_time
        if len(chunk) >= self._chunk_size:
            self.flush()

    # -- chunks and summary ----------------------------------------------------------------------
    def flush(self) -> None:
        """Close the open chunk (with its message indexes) and commit it to the file."""
        if self._index:
            self._write_chunk()

    def _write_chunk(self) -> None:
        raw = bytes(self._chunk)
        start, end = self._start_time or 0, self._end_time
        compressed = self._zstd.compress(raw)
        chunk_offset = self._next
        chunk = _record_bytes(Chunk(compression="zstd", data=compressed, message_start_time=start,
                                    message_end_time=end, uncompressed_crc=zlib.crc32(raw),
                                    uncompressed_size=len(raw)))
        offsets, builder = {}, RecordBuilder()
        index_start = chunk_offset + len(chunk)
        for channel_id, entries in self._index.items():
            offsets[channel_id] = index_start + builder.count
            MessageIndex(channel_id=channel_id, records=entries).write(builder)
            self._counts[channel_id] += len(entries)
        indexes = builder.end()
        self._commit(chunk + indexes)
        self._chunk_indexes.append(ChunkIndex(
            message_start_time=start, message_end_time=end, chunk_start_offset=chunk_offset,
            chunk_length=len(chunk), message_index_offsets=offsets, message_index_length=len(indexes),
            compression="zstd", compressed_size=len(compressed), uncompressed_size=len(raw)))
        self._first_time = start if self._first_time is None else min(self._first_time, start)
        self._last_time = max(self._last_time, end)
        self._chunk = bytearray()
        self._index = defaultdict(list)
        self._start_time, self._end_time = None, 0

    def finish(self) -> None:
        """Close the last chunk, write the summary (schemas, channels, statistics, chunk and
        metadata indexes, summary offsets) and the footer."""
        if self._chunk:  # messages, or schema / channel records still waiting for one
            self._write_chunk()
        data_end = _record_bytes(DataEnd(data_section_crc=0))
        summary_start = self._next + len(data_end)
        groups: list[tuple[int, list[Any]]] = [
            (Opcode.SCHEMA, list(self._schemas.values())),
            (Opcode.CHANNEL, list(self._channels.values())),
            (Opcode.STATISTICS, [Statistics(
                message_count=sum(self._counts.values()), schema_count=len(self._schemas),
                channel_count=len(self._channels), attachment_count=0,
                metadata_count=len(self._metadata_indexes), chunk_count=len(self._chunk_indexes),
                message_start_time=self._first_time or 0, message_end_time=self._last_time,
                channel_message_counts=dict(self._counts))]),
            (Opcode.CHUNK_INDEX, self._chunk_indexes),
            (Opcode.METADATA_INDEX, self._metadata_indexes),
        ]
        builder, offsets = RecordBuilder(), []
        for opcode, records in groups:
            begin = builder.count
            for r in records:
                r.write(builder)
            offsets.append(SummaryOffset(group_opcode=opcode, group_start=summary_start + begin,
                                         group_length=builder.count - begin))
        offset_start = summary_start + builder.count
        for o in offsets:
            o.write(builder)
        summary = builder.end()
        summary += _padding(summary_start + len(summary))  # the footer's place is final: the CRC covers this
        crc = zlib.crc32(struct.pack("<BQQQ", Opcode.FOOTER, 20, summary_start, offset_start),
                         zlib.crc32(summary))
        self._commit(data_end + summary)
        # the summary is there: the footer may point to it now (one write, within one page)
        self._write_at(self._end, _record_bytes(Footer(summary_start=summary_start, summary_offset_start=offset_start,
                                                       summary_crc=crc)))

    # -- committing records (see the module's docstring) -----------------------------------------
    @property
    def _next(self) -> int:
        """Where the next committed record starts: after the footer and magic that end the file now."""
        return self._end + len(_FLUSHED_END)

    def _commit(self, records: bytes) -> None:
        """Make ``records`` part of the file, followed by a summary-less footer and the magic;
        every moment in between leaves a readable file."""
        records += _padding(self._next + len(records))
        new_end = self._next + len(records)
        self._write_at(new_end, _FLUSHED_END)
        self._write_at(self._next, records)
        self._write_at(self._end, _RECORD.pack(PAD_OPCODE, len(_FLUSHED_END) - _RECORD.size))
        self._end = new_end

    def _write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            view, offset = view[n:], offset + n


def _padding(at: int) -> bytes:
    """A padding record for offset ``at`` that keeps a footer starting after it within one page."""
    room = PAGE - at % PAGE
    if room >= len(_FLUSHED_END):
        return b""
    size = room if room >= _RECORD.size else room + _RECORD.size  # a record has a 9-byte head at least
    return _RECORD.pack(PAD_OPCODE, size - _RECORD.size) + bytes(size - _RECORD.size)


def _record_bytes(record) -> bytes:
    builder = RecordBuilder()
    record.write(builder)
    return builder.end()


_FLUSHED_END = _record_bytes(Footer(summary_start=0, summary_offset_start=0, summary_crc=0)) + MCAP0_MAGIC
