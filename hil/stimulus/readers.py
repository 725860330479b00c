"""Stimulus readers: CAN logs (ASC, BLF, TRC, candump, CSV, MF4; each also ``.gz``), MCAP
recordings and serial captures, read losslessly and within bounds.

Each format is a :class:`StimulusReader` in the ``hil.stimulus`` registry (:mod:`hil.registry`);
a plugin adds one with an entry point. A suffix no reader claims goes to python-can's reader table
(``python-can``: its own readers such as ``.db`` and its ``can.io.message_reader`` plugins, also
``.gz``-compressed).

Every frame of a file ends up in the :class:`SourceLog`, or reading fails with
:class:`StimulusError` naming the file and the record (``line N`` for text, ``object N`` for BLF,
``frame N`` for MF4, ``message N`` for MCAP) and what was expected — before any bench starts,
never half-way through a replay. Records that are not frames (ASC statistics, BLF LIN objects, TRC
status lines, foreign MCAP topics, …) are counted in ``SourceLog.skipped`` and reported as left out.

Bounds (documented in docs/stimulus.md): a file is opened through :mod:`hil.files` (a regular file
of at most :data:`FILE_LIMIT` bytes, opened without blocking), compressed content expands to at
most :data:`EXPAND_LIMIT` bytes, a text line is at most :data:`LINE_LIMIT` bytes, and at most
``max_frames`` frames are read (the timeline passes what is left of :data:`FRAME_LIMIT`). Every
frame is checked (id range, DLC and payload, FD flags, a log time in [0, 146 years)), and times
must not go backwards on a channel. Events come back sorted by log time (stable).
"""

from __future__ import annotations

import gzip
import io
import zlib
from array import array
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from hil import registry
from hil.errors import HilError, RecordingError, StimulusError
from hil.files import MiB, FileRefused, open_regular
from hil.spec.common import STIMULUS_FILE
from hil.spec.suite import stimulus_format, suffix_formats
from hil.stimulus.events import MAX_LOG_NS, CanEvent, Event, RecordError, SerialEvent

FILE_LIMIT = STIMULUS_FILE.limit  # a stimulus file on disk
EXPAND_LIMIT = 1024 * MiB  # what a .gz, BLF containers, MF4 blocks or MCAP chunks may expand to
LINE_LIMIT = 64 * 1024  # one line of a text log
FRAME_LIMIT = 5_000_000  # frames read for one stimulus (all its files)
MF4_MISSING = "reading MF4 needs asammdf, which is not installed: pip install 'hil[mf4]'"


@dataclass(frozen=True)
class SourceLog:
    """A fully read and checked stimulus file. ``records[i]`` is where event ``i`` stands in the
    file (line, object, frame or message number, as ``unit`` says); ``skipped`` counts records that
    are not frames, by kind."""

    path: Path
    format: str
    events: list[Event]
    records: array = field(default_factory=lambda: array("q"))
    unit: str = "record"
    skipped: Counter = field(default_factory=Counter)

    def channels(self) -> Counter:
        """Log channel → number of events on it."""
        return Counter(e.channel for e in self.events)

    def where(self, i: int) -> str:
        """Event ``i``'s place in its file, e.g. ``"drive.asc line 181"``."""
        return f"{self.path.name} {self.unit} {self.records[i]}" if i < len(self.records) else self.path.name


class StimulusReader:
    """One stimulus format (``hil.stimulus``): the file suffixes it claims (lower case, with their
    dot), what one of its records is called in errors (``unit``), whether ``lenient`` applies
    (``text``) and whether a ``.gz`` of it may be read (``packed``).

    :meth:`records` yields ``(record number, event)`` — a :class:`CanEvent` or
    :class:`SerialEvent` — or ``(record number, why)`` for a record that is not a frame (counted
    as left out); it raises :class:`RecordError` for a record it cannot account for. hil checks
    every event, the order of times per channel and the frame limit."""

    suffixes: ClassVar[tuple[str, ...]] = ()
    unit: ClassVar[str] = "line"
    text: ClassVar[bool] = False
    packed: ClassVar[bool] = True

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        raise NotImplementedError


def detect_format(path: Path) -> str:
    """The format from the suffix (the one before ``.gz`` for a compressed file)."""
    try:
        fmt = stimulus_format(path)
    except HilError as exc:
        raise StimulusError(f"{path}: {exc}") from None
    if fmt is None:
        suffixes = sorted(s for name in suffix_formats() for s in registry.STIMULUS.suffixes(name))
        raise StimulusError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                            f"expected one of {', '.join(suffixes)} (optionally + .gz) or an explicit format")
    return fmt


def read_source(path: str | Path, fmt: str = "auto", lenient: bool = False,
                max_frames: int = FRAME_LIMIT) -> SourceLog:
    """Read and check one stimulus file completely. ``lenient`` (text formats only) skips lines
    that are not understood instead of refusing the file, and counts them in ``skipped``."""
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    try:
        reader = registry.STIMULUS.implementation(fmt)()
    except HilError as exc:
        raise StimulusError(f"{path}: {exc}") from None
    packed = path.suffix.lower() == ".gz"
    if lenient and not reader.text:
        raise StimulusError(f"{path}: 'lenient' applies to text logs only; a {fmt} file is read strictly")
    if packed and not reader.packed:
        raise StimulusError(f"{path}: expected a plain {fmt} file, not a .gz of it")
    out = _Collector(path, reader.unit, max_frames)
    try:
        with open_regular(path, FILE_LIMIT, "stimulus file") as f:
            out.add_all(reader.records(_Inflated(f) if packed else f, path, lenient))
    except FileRefused as exc:
        raise StimulusError(str(exc)) from None
    except RecordError as exc:
        raise StimulusError(f"{path}: {exc.where + ': ' if exc.where else ''}{exc}") from None
    except _Unpacked as exc:
        raise StimulusError(f"{path}: byte {exc.at:,} of its content: {exc}") from None
    return out.finish(fmt)


class _Collector:
    """Checks each record's event and keeps it with its place in the file."""

    def __init__(self, path: Path, unit: str, max_frames: int):
        self.path, self.unit, self.max_frames = path, unit, max_frames
        self.events: list[Event] = []
        self.records = array("q")
        self.skipped: Counter = Counter()
        self.last: dict[tuple[type, str], int] = {}  # (kind, channel) → last log time

    def add_all(self, items: Iterator[tuple[int, Event | str]]) -> None:
        for record, item in items:
            self.add(record, item)

    def add(self, record: int, item: Event | str) -> None:
        if isinstance(item, str):
            self.skipped[item] += 1
            return
        problem = item.problem() if isinstance(item, CanEvent) else None
        if problem is None and not 0 <= item.t_ns < MAX_LOG_NS:
            problem = f"expected a log time between 0 and {MAX_LOG_NS / 1e9:.3g} s, got {item.t_ns / 1e9:.9g} s"
        key = (type(item), item.channel)
        last = self.last.get(key, 0)
        if problem is None and item.t_ns < last:
            problem = (f"time goes back on channel {item.channel!r}: {item.t_ns / 1e9:.9f} s after "
                       f"{last / 1e9:.9f} s; the file is corrupt (or merged from several logs)")
        if problem is not None:
            raise RecordError(f"{self.unit} {record}", problem)
        if len(self.events) >= self.max_frames:
            raise RecordError(f"{self.unit} {record}", f"a stimulus reads at most {FRAME_LIMIT:,} frames from its "
                              "files; this one has more (cut the log to the part the bench needs)")
        self.last[key] = item.t_ns
        self.events.append(item)
        self.records.append(record)

    def finish(self, fmt: str) -> SourceLog:
        if not self.events:
            what = ", ".join(f"{n} {kind}" for kind, n in self.skipped.items())
            raise StimulusError(f"{self.path}: no frames in the file{f' (only {what})' if what else ''}")
        order = sorted(range(len(self.events)), key=lambda i: self.events[i].t_ns)
        return SourceLog(self.path, fmt, [self.events[i] for i in order], array("q", (self.records[i] for i in order)),
                         self.unit, self.skipped)


# ---- text logs -----------------------------------------------------------------------------------

class TextLog(StimulusReader):
    """A line-oriented log, parsed by the line parser of :mod:`hil.stimulus.textlogs` for ``fmt``."""

    text = True
    fmt: ClassVar[str]

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        from hil.stimulus.textlogs import READERS

        return _read_text(stream, READERS[self.fmt](), lenient)


class AscReader(TextLog):
    fmt = "asc"


class TrcReader(TextLog):
    fmt = "trc"


class CandumpReader(TextLog):
    fmt = "log"


class CsvReader(TextLog):
    fmt = "csv"


class SerialReader(TextLog):
    fmt = "serial"


def _read_text(stream: BinaryIO, reader, lenient: bool) -> Iterator[tuple[int, Event | str]]:
    """Feed every line to the line parser; a line it cannot account for is an error (or, when
    ``lenient``, skipped and counted)."""
    n = 0
    for n, line in _lines(stream):
        try:
            if isinstance(line, UnicodeDecodeError):
                raise ValueError(f"not text (byte {line.object[line.start]:#04x} at column {line.start + 1}); "
                                 "the file is corrupt")
            item = reader.parse(line)
        except ValueError as exc:
            if not lenient:
                raise RecordError(f"line {n}", str(exc)) from None
            item = "lines not understood (lenient)"
        if item is not None:
            yield n, item
    try:
        reader.end()
    except ValueError as exc:
        raise RecordError(f"line {n + 1}", str(exc)) from None


def _lines(stream: BinaryIO) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """``(line number, text without its line end)``, or the decode error of a line that is not
    UTF-8. A byte-order mark is dropped; CRLF line ends are accepted."""
    n = 0
    while True:
        try:
            raw = stream.readline(LINE_LIMIT + 1)
        except _Unpacked as exc:
            raise RecordError(f"line {n + 1}", str(exc)) from None
        if not raw:
            return
        n += 1
        if len(raw) > LINE_LIMIT:
            raise RecordError(f"line {n}", f"longer than {LINE_LIMIT:,} bytes; not a log line (the file is corrupt)")
        if not raw.endswith(b"\n"):
            raise RecordError(f"line {n}", "the last line has no line end; the file is truncated")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield n, exc
            continue
        yield n, text.removeprefix("\ufeff" if n == 1 else "").rstrip("\r\n")


# ---- compressed files ----------------------------------------------------------------------------

class _Unpacked(Exception):
    """A .gz stream that is corrupt, cut or too large after ``at`` bytes; ``str()`` says which."""

    def __init__(self, message: str, at: int):
        super().__init__(message)
        self.at = at


class _Inflated(io.BufferedReader):
    """A .gz file's content, inflated as it is read, at most :data:`EXPAND_LIMIT` bytes."""

    def __init__(self, f: BinaryIO):
        super().__init__(_GzipRaw(gzip.GzipFile(fileobj=f, mode="rb")))


class _GzipRaw(io.RawIOBase):
    def __init__(self, gz: gzip.GzipFile):
        self.gz, self.total = gz, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        try:
            n = self.gz.readinto(b)
        except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
            cut = isinstance(exc, EOFError)
            raise _Unpacked(f"the gzip stream is {'cut short; the file is truncated' if cut else f'corrupt ({exc})'}",
                            self.total) from None
        self.total += n
        if self.total > EXPAND_LIMIT:
            raise _Unpacked(f"the gzip stream expands to more than {EXPAND_LIMIT // MiB} MiB; refusing to inflate more",
                            self.total)
        return n


# ---- BLF, MF4, MCAP and python-can's readers -----------------------------------------------------

class BlfReader(StimulusReader):
    unit = "object"

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        from hil.stimulus.blf import read_blf

        return read_blf(stream, EXPAND_LIMIT)


class Mf4Reader(StimulusReader):
    unit = "frame"

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        return _read_mf4(stream, path)


class McapReader(StimulusReader):
    """MCAP compresses its chunks itself: a .gz of it is refused."""

    unit = "message"
    packed = False

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        return _read_mcap(stream, path)


class PcapReader(StimulusReader):
    """UDP datagrams of a pcap / pcapng capture (:mod:`hil.stimulus.pcap`); a .gz of one is
    inflated (within the expansion limit) because the capture readers seek."""

    unit = "packet"
    fmt: ClassVar[str] = "pcap"

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        from hil.stimulus.pcap import read_pcap

        seekable = io.BytesIO(stream.read(EXPAND_LIMIT)) if isinstance(stream, _Inflated) else stream
        return read_pcap(seekable, self.fmt)


class PcapngReader(PcapReader):
    fmt = "pcapng"


class PythonCanReader(StimulusReader):
    """python-can's ``LogReader`` for a suffix no hil reader claims: python-can's own readers
    (``.db``) and its ``can.io.message_reader`` plugins, ``.gz`` too. python-can opens the file
    itself (hil has checked it is a regular file of bounded size)."""

    unit = "message"

    def records(self, stream: BinaryIO, path: Path, lenient: bool) -> Iterator[tuple[int, Event | str]]:
        import can

        try:
            reader = can.LogReader(path)
        except Exception as exc:  # whatever the chosen reader raises on opening
            raise RecordError("", f"python-can cannot read it ({type(exc).__name__}: {exc})") from None
        return _messages(reader, self.unit)


def _messages(reader, unit: str) -> Generator[tuple[int, Event | str], None, int]:
    """The frames of a python-can reader, numbered; whatever it raises names the record. Returns
    how many it read."""
    n = 0
    with reader:
        try:
            for msg in reader:
                n += 1
                yield n, CanEvent.from_message(msg, round(msg.timestamp * 1e9))
        except RecordError:
            raise
        except Exception as exc:
            raise RecordError(f"{unit} {n + 1}", f"unreadable ({type(exc).__name__}: {exc}); "
                              "the file is corrupt") from None
    return n


def _read_mf4(stream: BinaryIO, path: Path) -> Iterator[tuple[int, Event | str]]:
    """Every CAN bus event of an MF4 file, through python-can's reader (asammdf). That reader takes
    only the channel groups it recognises and is silent about the rest, so the frames it yields are
    counted against what the file's CAN channel groups declare."""
    import can

    try:
        from asammdf import MDF, Source
        from asammdf.blocks.v4_constants import FLAG_CG_BUS_EVENT
    except ImportError:
        raise RecordError("", MF4_MISSING) from None
    content = stream.read(FILE_LIMIT + 1)
    if len(content) > FILE_LIMIT:
        raise RecordError("", f"the MF4 content is larger than {FILE_LIMIT // MiB} MiB")
    try:
        with MDF(io.BytesIO(content)) as mdf:
            declared, expanded = 0, 0
            group: Any  # asammdf's group records are untyped
            for k, group in enumerate(mdf.groups):
                cg = group.channel_group
                expanded += sum(getattr(block, "original_size", 0) or 0 for block in group.data_blocks)
                if not cg.flags & FLAG_CG_BUS_EVENT:
                    continue  # measured signals, not bus frames
                if cg.acq_source is None or cg.acq_source.bus_type != Source.BUS_TYPE_CAN:
                    if cg.cycles_nr:
                        raise RecordError(f"channel group {k}", f"{cg.cycles_nr} bus events that are not CAN "
                                          "frames (or name no bus); hil reads CAN frames only")
                    continue
                declared += cg.cycles_nr
        if expanded > EXPAND_LIMIT:
            raise RecordError("", f"the data blocks expand to {expanded // MiB} MiB; at most "
                              f"{EXPAND_LIMIT // MiB} MiB is read")
        reader = can.MF4Reader(io.BytesIO(content))
    except RecordError:
        raise
    except NotImplementedError:  # python-can found no asammdf when it was imported
        raise RecordError("", MF4_MISSING) from None
    except Exception as exc:  # asammdf raises whatever its parser meets
        raise RecordError("", f"unreadable MF4 ({type(exc).__name__}: {exc}); the file is corrupt") from None
    n = yield from _messages(reader, "frame")
    if n != declared:
        raise RecordError("", f"its CAN channel groups declare {declared} frames, {n} could be read; "
                          "the file is corrupt")


def _read_mcap(f: BinaryIO, path: Path) -> Iterator[tuple[int, Event | str]]:
    """A hil recording (or any MCAP with hil's CAN / serial topics): every bus is a channel. An MCAP
    with camera image channels is a camera source instead (:mod:`hil.stimulus.camera`)."""
    from hil.recording.loader import load
    from hil.stimulus.camera import has_images, read_camera

    if has_images(f):
        yield from read_camera(f)
        return

    try:
        rec = load(path, strict=True, fileobj=f, expand_limit=EXPAND_LIMIT)
    except RecordingError as exc:
        raise RecordError("", str(exc).removeprefix(f"{path}: ")) from None
    except Exception as exc:  # payloads that are not hil's JSON
        raise RecordError("", f"unreadable MCAP ({type(exc).__name__}: {exc})") from None
    n = 0
    for topic, count in rec.other_topics.items():
        for _ in range(count):
            n += 1
            yield n, f"MCAP messages on topics that are neither CAN nor serial ({topic})"
    for bus in rec.buses:
        frames = rec.frames(bus)
        for t, i, fl, dlc, row in zip(frames.t_ns.tolist(), frames.id.tolist(), frames.flags.tolist(),
                                      frames.dlc.tolist(), frames.data):
            n += 1
            if dlc > len(row):
                raise RecordError(f"message {n}", f"a frame on {bus!r} claims {dlc} data bytes; at most {len(row)}")
            yield n, CanEvent(t, bus, i, fl & 0x3F, bytes(row[:dlc]))
    for bus, chunks in rec.serial.items():
        for t, data in chunks:
            n += 1
            yield n, SerialEvent(t, bus, data)

