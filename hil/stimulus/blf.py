"""Vector BLF, read strictly: every object accounted for, or an error naming it.

python-can's ``BLFReader`` (whose struct layouts are used here) skips what it cannot parse: an
object with a corrupt size field hides every object after it (they are taken for the rest of a
container that never comes), a cut last container is dropped with what it held, unknown
compression methods and header versions are skipped with a log warning, and containers are
inflated without limit. Here:

* the file header's signature must be ``LOGG``, its file size and object count must match the file
  (CANoe's restore-point objects, type 115, are not counted, as CANoe counts);
* the file is a sequence of ``LOG_CONTAINER`` objects, each fitting the file, stored or
  zlib-compressed, inflating to exactly the size it states, all together at most the caller's
  ``expand_limit``;
* their content is a stream of objects that follow each other exactly — after padding of
  ``size % 4`` bytes where Vector's writers pad, or zero padding python-can's writer adds — each
  with the ``LOBJ`` signature, header version 1 or 2 and a size that fits its type;
* CAN and CAN FD frames and error frames become events; every other object is counted by its type
  (restore points, type 115, are structure).

Errors name the object ("object 12", counting from 1 in the stream of objects inside the
containers) or the container ("container at byte 144").
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from can.io.blf import (CAN_ERROR_EXT, CAN_ERROR_EXT_STRUCT, CAN_FD_MESSAGE, CAN_FD_MESSAGE_64, CAN_FD_MSG_64_STRUCT,
                        CAN_FD_MSG_STRUCT, CAN_MESSAGE, CAN_MESSAGE2, CAN_MSG_EXT, CAN_MSG_STRUCT,
                        FILE_HEADER_STRUCT, LOG_CONTAINER, LOG_CONTAINER_STRUCT, NO_COMPRESSION,
                        OBJ_HEADER_BASE_STRUCT, OBJ_HEADER_V1_STRUCT, OBJ_HEADER_V2_STRUCT, REMOTE_FLAG,
                        TIME_ONE_NANS, TIME_TEN_MICS, ZLIB_DEFLATE, systemtime_to_timestamp)

from hil.canframe import FLAG_BRS, FLAG_ERROR, FLAG_ESI, FLAG_EXTENDED, FLAG_FD, FLAG_REMOTE
from hil.stimulus.events import CLASSIC_MAX, FD_LENGTHS, CanEvent, RecordError

CAN_ERROR, CAN_FD_ERROR_64, RESTORE_POINT = 2, 104, 115
OBJECT_LIMIT = 16 << 20  # one object inside the containers
BASE = OBJ_HEADER_BASE_STRUCT.size
HEADERS = {1: BASE + OBJ_HEADER_V1_STRUCT.size, 2: BASE + OBJ_HEADER_V2_STRUCT.size}
CONTAINER_HEAD = BASE + LOG_CONTAINER_STRUCT.size
# types Vector's writers pad to ``size % 4`` (variable-length payloads)
PADDED = frozenset((6, 7, 8, 9, 10, 32, 33, 65, 69, 71, 72, 76, 77, 78, 79, 80, 81, 83, 84, 85, 90, 92, 93, 96, 97,
                    102, 117))
# object size after the header: exact for fixed layouts (CAN_FD_MESSAGE: python-can writes 84, CANoe 88)
BODY_SIZES = {CAN_MESSAGE: (CAN_MSG_STRUCT.size,), CAN_MESSAGE2: (CAN_MSG_STRUCT.size + 8,),
              CAN_ERROR_EXT: (CAN_ERROR_EXT_STRUCT.size,),
              CAN_FD_MESSAGE: (CAN_FD_MSG_STRUCT.size, CAN_FD_MSG_STRUCT.size + 4)}
MIN_BODY = {CAN_FD_MESSAGE_64: CAN_FD_MSG_64_STRUCT.size, CAN_ERROR: 2, CAN_FD_ERROR_64: 2}  # variable layouts
NAMES = {CAN_ERROR: "CAN_ERROR", 3: "CAN_OVERLOAD", 4: "CAN_STATISTIC", 5: "APP_TRIGGER", 6: "ENV_INTEGER",
         7: "ENV_DOUBLE", 8: "ENV_STRING", 9: "ENV_DATA", 11: "LIN_MESSAGE", 31: "CAN_DRIVER_ERROR",
         57: "LIN_MESSAGE2", 65: "APP_TEXT", 71: "ETHERNET_FRAME", 72: "SYS_VARIABLE", 74: "CAN_DRIVER_ERROR_EXT",
         96: "GLOBAL_MARKER", 103: "ETHERNET_STATUS"}


def read_blf(stream: BinaryIO, expand_limit: int) -> Iterator[tuple[int, CanEvent | str]]:
    """``(object number, event or kind of non-frame object)`` for every object of a BLF stream."""
    reader = _Reader(stream, expand_limit)
    yield from reader.objects()


class _Reader:
    def __init__(self, stream: BinaryIO, expand_limit: int):
        self.stream = stream
        self.expand_limit = expand_limit
        self.offset = 0  # bytes of the file consumed
        self.expanded = 0
        self.number = 0  # objects seen inside the containers
        self.counted = 0  # of them, what the header's object count counts
        self.start_ns = 0

    def _read(self, n: int, where: str, what: str) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise RecordError(where, f"the file ends inside {what}, after byte {self.offset + len(data)}; "
                              "it is truncated")
        self.offset += n
        return data

    def objects(self) -> Iterator[tuple[int, CanEvent | str]]:
        head = self._read(FILE_HEADER_STRUCT.size, "file header", "the header")
        fields = FILE_HEADER_STRUCT.unpack(head)
        if fields[0] != b"LOGG":
            raise RecordError("byte 0", f"expected the BLF signature 'LOGG', got {fields[0]!r}; not a BLF file")
        header_size, file_size, count = fields[1], fields[10], fields[12]
        if not FILE_HEADER_STRUCT.size <= header_size <= 4096:
            raise RecordError("file header", f"expected a header size of {FILE_HEADER_STRUCT.size}..4096 bytes, "
                              f"got {header_size}")
        self._read(header_size - FILE_HEADER_STRUCT.size, "file header", "the header")
        self.start_ns = round(systemtime_to_timestamp(fields[14:22]) * 1000) * 1_000_000  # ms resolution
        tail = bytearray()  # object bytes carried over from the previous container
        pending = (0, 0)  # padding after the last object: (bytes, required)
        while True:
            at = self.offset
            base = self.stream.read(BASE)
            if not base:
                break
            self.offset += len(base)
            if len(base) < BASE:
                raise RecordError(f"container at byte {at}", "the file ends inside its header; it is truncated")
            data = self._container(at, base)
            tail += data
            used, pending = yield from self._inner(tail, pending)
            del tail[:used]
        if tail and not (len(tail) == pending[0] and (pending[1] or not any(tail))):
            raise RecordError(f"object {self.number + 1}", f"the last {len(tail):,} byte(s) of the last container are "
                              "not a whole object; the file is truncated, or an object's size is corrupt")
        if file_size != self.offset:
            raise RecordError("file header", f"says the file has {file_size} bytes, it has {self.offset}; "
                              f"the file is {'truncated' if self.offset < file_size else 'corrupt'}")
        if count != self.counted:
            raise RecordError("file header", f"counts {count} objects, the file holds {self.counted}; "
                              "objects are missing or the file is corrupt")

    def _container(self, at: int, base: bytes) -> bytes:
        """The content of the log container whose base header is ``base`` (at byte ``at``)."""
        where = f"container at byte {at}"
        signature, _, _, size, kind = OBJ_HEADER_BASE_STRUCT.unpack(base)
        if signature != b"LOBJ":
            raise RecordError(where, f"expected the object signature 'LOBJ', got {signature!r}; the file is corrupt")
        if kind != LOG_CONTAINER:
            raise RecordError(where, f"expected a log container (type {LOG_CONTAINER}), got type {kind}")
        if size < CONTAINER_HEAD:
            raise RecordError(where, f"expected a container size ≥ {CONTAINER_HEAD}, got {size}; the file is corrupt")
        body = self._read(size - BASE, where, f"the container (it claims {size} bytes)")
        self._read(size % 4, where, "the container's padding")
        method, stated = LOG_CONTAINER_STRUCT.unpack_from(body)
        packed = body[LOG_CONTAINER_STRUCT.size:]
        self.expanded += stated
        if self.expanded > self.expand_limit:
            raise RecordError(where, f"the containers expand to more than {self.expand_limit >> 20} MiB; "
                              "refusing to inflate more")
        if method == NO_COMPRESSION:
            data = bytes(packed)
        elif method == ZLIB_DEFLATE:
            inflate = zlib.decompressobj()
            try:
                data = inflate.decompress(packed, stated + 1)
            except zlib.error as exc:
                raise RecordError(where, f"the compressed data is corrupt ({exc})") from None
            if not inflate.eof or inflate.unconsumed_tail or inflate.unused_data:
                raise RecordError(where, "the compressed data does not end where the container ends; "
                                  "the file is corrupt")
        else:
            raise RecordError(where, f"expected compression method {NO_COMPRESSION} or {ZLIB_DEFLATE}, got {method}")
        if len(data) != stated:
            raise RecordError(where, f"the container says it holds {stated} bytes, it holds {len(data)}; "
                              "the file is corrupt")
        return data

    def _inner(self, buf: bytearray, pending: tuple[int, int]):
        """Objects that lie whole in ``buf``; returns how many bytes they used and the padding
        still owed after the last one."""
        pos = 0
        while True:
            pad, required = pending
            if pad:
                if len(buf) - pos < pad + 4:
                    return pos, pending  # what follows decides whether it is padding
                if required or (buf[pos:pos + 4] != b"LOBJ" and not any(buf[pos:pos + pad])):
                    pos += pad
                pending = (0, 0)
            if len(buf) - pos < BASE:
                return pos, pending
            signature, header_size, version, size, kind = OBJ_HEADER_BASE_STRUCT.unpack_from(buf, pos)
            where = f"object {self.number + 1}"
            if signature != b"LOBJ":
                raise RecordError(where, f"expected the object signature 'LOBJ', got {bytes(signature)!r}; "
                                  "the previous object's size or the data is corrupt")
            if HEADERS.get(version) != header_size:
                raise RecordError(where, f"expected header version 1 ({HEADERS[1]} bytes) or 2 ({HEADERS[2]} bytes), "
                                  f"got version {version} of {header_size} bytes")
            if not header_size <= size <= OBJECT_LIMIT:
                raise RecordError(where, f"expected an object size of {header_size}..{OBJECT_LIMIT} bytes, got {size}")
            if pos + size > len(buf):
                return pos, pending
            self.number += 1
            if kind != RESTORE_POINT:  # structure CANoe appends, not counted in the header either
                self.counted += 1
                yield self.number, self._object(buf, pos, version, size, kind, where)
            pos += size
            pending = (size % 4, kind in PADDED)

    def _object(self, buf: bytearray, pos: int, version: int, size: int, kind: int, where: str) -> CanEvent | str:
        header = HEADERS[version]
        body = size - header
        if kind in BODY_SIZES and body not in BODY_SIZES[kind]:
            raise RecordError(where, f"expected a {_name(kind)} object of {header + BODY_SIZES[kind][0]} bytes, "
                              f"got {size}; the file is corrupt")
        if body < MIN_BODY.get(kind, 0):
            raise RecordError(where, f"a {_name(kind)} object of {size} bytes is too short for its fields")
        if kind == LOG_CONTAINER:
            raise RecordError(where, "a log container inside a log container; the file is corrupt")
        if kind not in (CAN_MESSAGE, CAN_MESSAGE2, CAN_ERROR_EXT, CAN_FD_MESSAGE, CAN_FD_MESSAGE_64, CAN_ERROR,
                        CAN_FD_ERROR_64):
            return f"BLF {_name(kind)} objects (not CAN frames)"
        unpack = OBJ_HEADER_V1_STRUCT.unpack_from if version == 1 else OBJ_HEADER_V2_STRUCT.unpack_from
        time_flags, _, _, stamp = unpack(buf, pos + BASE)
        if time_flags not in (TIME_TEN_MICS, TIME_ONE_NANS):
            raise RecordError(where, f"expected timestamp flags {TIME_TEN_MICS} (10 µs) or {TIME_ONE_NANS} (1 ns), "
                              f"got {time_flags}")
        t = self.start_ns + stamp * (10_000 if time_flags == TIME_TEN_MICS else 1)
        try:
            return _frame(kind, buf, pos + header, body, header, t)
        except ValueError as exc:
            raise RecordError(where, f"{_name(kind)}: {exc}") from None


def _frame(kind: int, buf: bytearray, at: int, body: int, header: int, t: int) -> CanEvent:
    """The CAN frame in the body of an object of type ``kind`` (``body`` bytes from ``at``, after a
    header of ``header`` bytes)."""
    if kind in (CAN_ERROR, CAN_FD_ERROR_64):
        channel, = struct.unpack_from("<H", buf, at)
        return CanEvent(t, str(channel - 1), 0, FLAG_ERROR, b"")
    if kind in (CAN_MESSAGE, CAN_MESSAGE2):
        channel, flags, dlc, can_id, data = CAN_MSG_STRUCT.unpack_from(buf, at)
        if dlc > CLASSIC_MAX:
            raise ValueError(f"expected a classic DLC ≤ 8, got {dlc}")
        remote = flags & REMOTE_FLAG
        return CanEvent(t, str(channel - 1), can_id & 0x1FFFFFFF, _id_flags(can_id) | (FLAG_REMOTE if remote else 0),
                        bytes(dlc) if remote else data[:dlc])
    if kind == CAN_ERROR_EXT:
        fields = CAN_ERROR_EXT_STRUCT.unpack_from(buf, at)
        channel, dlc, can_id, data = fields[0], fields[5], fields[7], fields[9]
        return CanEvent(t, str(channel - 1), can_id & 0x1FFFFFFF, FLAG_ERROR, data[:min(dlc, CLASSIC_MAX)])
    if kind == CAN_FD_MESSAGE:
        channel, flags, dlc, can_id, _, _, fd_flags, valid, data = CAN_FD_MSG_STRUCT.unpack_from(buf, at)
        return _fd_event(t, channel, can_id, dlc, valid, data, bool(fd_flags & 0x1), bool(fd_flags & 0x2),
                         bool(fd_flags & 0x4), bool(flags & REMOTE_FLAG))
    fields = CAN_FD_MSG_64_STRUCT.unpack_from(buf, at)  # CAN_FD_MESSAGE_64
    channel, dlc, valid, can_id = fields[0], fields[1], fields[2], fields[4]
    fd_flags, ext_offset = fields[6], fields[13]
    room = body - CAN_FD_MSG_64_STRUCT.size  # bytes after the fixed fields
    end = ext_offset - header - CAN_FD_MSG_64_STRUCT.size if ext_offset else room
    if not 0 <= end <= room:
        raise ValueError(f"its extended data offset {ext_offset} lies outside the object")
    start = at + CAN_FD_MSG_64_STRUCT.size
    data = bytes(buf[start:start + min(valid, end)]).ljust(valid, b"\0")  # as CANoe and python-can read it
    return _fd_event(t, channel, can_id, dlc, valid, data, bool(fd_flags & 0x1000), bool(fd_flags & 0x2000),
                     bool(fd_flags & 0x4000), bool(fd_flags & 0x0010))


def _fd_event(t: int, channel: int, can_id: int, dlc: int, valid: int, data: bytes, edl: bool, brs: bool,
              esi: bool, remote: bool) -> CanEvent:
    """A frame of a CAN FD object, which holds classic frames too (no EDL)."""
    if dlc > 15 or valid > 64:
        raise ValueError(f"expected a DLC ≤ 15 and ≤ 64 valid bytes, got DLC {dlc} and {valid} bytes")
    flags = _id_flags(can_id) | (FLAG_FD if edl else 0) | (FLAG_BRS if brs else 0) | (FLAG_ESI if esi else 0)
    if remote and not edl:
        return CanEvent(t, str(channel - 1), can_id & 0x1FFFFFFF, flags | FLAG_REMOTE, bytes(min(dlc, CLASSIC_MAX)))
    if not edl and dlc > CLASSIC_MAX:
        raise ValueError(f"expected a classic DLC ≤ 8, got {dlc}")
    expected = FD_LENGTHS[dlc] if edl else dlc
    if valid != expected:
        raise ValueError(f"DLC {dlc} means {expected} bytes, the object holds {valid}")
    return CanEvent(t, str(channel - 1), can_id & 0x1FFFFFFF, flags | (FLAG_REMOTE if remote else 0), data[:valid])


def _id_flags(can_id: int) -> int:
    return FLAG_EXTENDED if can_id & CAN_MSG_EXT else 0


def _name(kind: int) -> str:
    return {CAN_MESSAGE: "CAN_MESSAGE", CAN_MESSAGE2: "CAN_MESSAGE2", CAN_ERROR_EXT: "CAN_ERROR_EXT",
            CAN_FD_MESSAGE: "CAN_FD_MESSAGE", CAN_FD_MESSAGE_64: "CAN_FD_MESSAGE_64",
            CAN_FD_ERROR_64: "CAN_FD_ERROR_64",
            LOG_CONTAINER: "LOG_CONTAINER"}.get(kind) or NAMES.get(kind, f"type {kind}")
