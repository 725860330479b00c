"""A chunked MCAP writer whose message path costs one ``struct.pack`` per message.

mcap's own ``Writer`` builds a ``Message`` object, updates statistics and writes the record
through several small writes for every message, which caps a recorder at a few ten thousand frames
per second in Python. Here a message is packed straight into the open chunk's buffer; everything
else — header, schemas, channels, chunk and index records, statistics, summary, footer — is
serialised by mcap's record classes, and the file layout is the one mcap's ``Writer`` produces
(chunks followed by their message indexes, then the summary with offsets), so every MCAP reader
(Foxglove, ``mcap`` CLI, ``mcap.reader``) reads it with its indexes.
"""

from __future__ import annotations

import struct
import zlib
from collections import defaultdict
from typing import BinaryIO

import zstandard
from mcap.data_stream import RecordBuilder
from mcap.opcode import Opcode
from mcap.records import (Channel, Chunk, ChunkIndex, DataEnd, Footer, Header, MessageIndex, Metadata,
                          MetadataIndex, Schema, Statistics, SummaryOffset)
from mcap.writer import MCAP0_MAGIC

_MESSAGE = struct.Struct("<BQHIQQ")  # opcode, record length, channel, sequence, log time, publish time
_MESSAGE_FIXED = _MESSAGE.size - 9


class McapWriter:
    """Write an MCAP file to ``stream``: :meth:`start`, then schemas / channels / metadata /
    messages, :meth:`flush` to close the open chunk, :meth:`finish` for the summary."""

    def __init__(self, stream: BinaryIO, chunk_size: int = 512 * 1024, library: str = "hil"):
        self._stream = stream
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
        self._stream.write(MCAP0_MAGIC)
        self._write_records(Header(profile="", library=self._library))

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
        offset = self._stream.tell()
        raw = _record_bytes(Metadata(name=name, metadata=data))
        self._stream.write(raw)
        self._metadata_indexes.append(MetadataIndex(offset=offset, length=len(raw), name=name))

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
        """Close the open chunk (with its message indexes) and flush the stream."""
        if self._index:
            self._write_chunk()
        self._stream.flush()

    def _write_chunk(self) -> None:
        raw = bytes(self._chunk)
        start, end = self._start_time or 0, self._end_time
        compressed = self._zstd.compress(raw)
        chunk_offset = self._stream.tell()
        chunk = _record_bytes(Chunk(compression="zstd", data=compressed, message_start_time=start,
                                    message_end_time=end, uncompressed_crc=zlib.crc32(raw),
                                    uncompressed_size=len(raw)))
        self._stream.write(chunk)
        offsets, builder = {}, RecordBuilder()
        index_start = chunk_offset + len(chunk)
        for channel_id, entries in self._index.items():
            offsets[channel_id] = index_start + builder.count
            MessageIndex(channel_id=channel_id, records=entries).write(builder)
            self._counts[channel_id] += len(entries)
        indexes = builder.end()
        self._stream.write(indexes)
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
        self._write_records(DataEnd(data_section_crc=0))
        summary_start = self._stream.tell()
        groups = [
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
        crc = zlib.crc32(struct.pack("<BQQQ", Opcode.FOOTER, 20, summary_start, offset_start),
                         zlib.crc32(summary))
        self._stream.write(summary)
        self._write_records(Footer(summary_start=summary_start, summary_offset_start=offset_start,
                                   summary_crc=crc))
        self._stream.write(MCAP0_MAGIC)
        self._stream.flush()

    def _write_records(self, *records) -> None:
        for r in records:
            self._stream.write(_record_bytes(r))


def _record_bytes(record) -> bytes:
    builder = RecordBuilder()
    record.write(builder)
    return builder.end()
