"""Stimulus readers: every CAN log format python-can reads, MCAP recordings and serial captures.

Each file is read completely and checked before a bench starts, so a truncated or corrupt file fails
early with :class:`StimulusError` naming the file, the record (line for text formats, object for
binary ones) and what was wrong — never half-way through a replay. Events come back sorted by log
time (a stable sort: frames logged out of order across channels keep their relative order).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import can

from hil.errors import RecordingError, StimulusError
from hil.spec.suite import STIMULUS_FORMATS, STIMULUS_SUFFIXES, stimulus_format
from hil.stimulus import serialcap
from hil.stimulus.events import CanEvent, Event, SerialEvent

FORMATS = STIMULUS_FORMATS
_CAN_READERS = {"asc": can.ASCReader, "blf": can.BLFReader, "trc": can.TRCReader,
                "log": can.CanutilsLogReader, "csv": can.CSVReader, "mf4": can.MF4Reader}
_TEXT = ("asc", "trc", "log", "csv")
# candump -L: (TIME) IFACE ID#DATA | ID#R[DLC] | ID##FLAGS+DATA, whole bytes only; ID 3 or 8 hex digits
# (error frames carry the 0x20000000 flag in an 8-digit id); an optional trailing R/T direction
CANDUMP_LINE = re.compile(r"^\(\d+\.\d+\)\s+\S+\s+([0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})"
                          r"#(R[0-9A-Fa-f]?|(?:[0-9A-Fa-f]{2})*|#[0-9A-Fa-f](?:[0-9A-Fa-f]{2})*)(\s+[RT])?$")


@dataclass(frozen=True)
class SourceLog:
    """A fully read and checked stimulus file."""

    path: Path
    format: str
    events: list[Event]

    def channels(self) -> Counter:
        """Log channel → number of events on it."""
        return Counter(e.channel for e in self.events)


def detect_format(path: Path) -> str:
    fmt = stimulus_format(path)
    if fmt is None:
        raise StimulusError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                            f"expected one of {', '.join(sorted(STIMULUS_SUFFIXES))} or an explicit format")
    return fmt


def read_source(path: str | Path, fmt: str = "auto") -> SourceLog:
    """Read and check one stimulus file completely."""
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise StimulusError(f"{path}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise StimulusError(f"{path}: no such file")
    if fmt == "mcap":
        events = _read_mcap(path)
    elif fmt == "serial":
        events = _read_serial(path)
    else:
        events = _read_can_log(path, fmt)
    events.sort(key=lambda e: e.t_ns)
    return SourceLog(path, fmt, events)


def _fail(path: Path, record: int, what: str) -> StimulusError:
    return StimulusError(f"{path}: record {record}: {what}")


def _check_text(path: Path, fmt: str) -> None:
    """Text logs: valid UTF-8, complete last line, and the ASC end marker (else: truncated)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise StimulusError(f"{path}: line {line}: not text (byte {raw[exc.start]:#04x} at offset "
                            f"{exc.start}); the file is corrupt") from None
    if text and not text.endswith("\n"):
        raise StimulusError(f"{path}: line {text.count(chr(10)) + 1}: the last line has no line end; "
                            "the file is truncated")
    if fmt == "asc" and "end triggerblock" not in text[-200:].lower():
        raise StimulusError(f"{path}: line {text.count(chr(10)) + 1}: expected 'End TriggerBlock' at the "
                            "end; the file is truncated")
    if fmt == "log":  # python-can's reader skips or reinterprets a malformed line instead of failing
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not CANDUMP_LINE.match(line):
                raise _fail(path, n, f"expected a candump frame such as '(1700000000.000000) can0 123#11223344', "
                                     f"got {line[:80]!r}")


def _check_blf(path: Path, reader: can.BLFReader) -> None:
    actual = path.stat().st_size
    if reader.file_size and reader.file_size != actual:
        raise StimulusError(f"{path}: header says the file has {reader.file_size} bytes, it has {actual}; "
                            "the file is truncated" if actual < reader.file_size else
                            f"{path}: header says the file has {reader.file_size} bytes, it has {actual}; "
                            "the file is corrupt")


class _ParseFailures(logging.Handler):
    """python-can's TRC reader logs lines it cannot parse instead of raising; collect them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "Failed to parse" in text or "Unsupported" in text:
            self.failures.append(text)


def _read_can_log(path: Path, fmt: str) -> list[Event]:
    if fmt in _TEXT:
        _check_text(path, fmt)
    events: list[Event] = []
    failures = _ParseFailures()
    log = logging.getLogger("can.io.trc")
    log.addHandler(failures)
    level = log.level
    log.setLevel(logging.INFO)
    try:
        with _CAN_READERS[fmt](path) as reader:
            if fmt == "blf":
                _check_blf(path, reader)
            for msg in reader:
                if failures.failures:
                    break
                n = len(events) + 1
                if not math.isfinite(msg.timestamp):
                    raise _fail(path, n, f"expected a finite timestamp, got {msg.timestamp}")
                event = CanEvent.from_message(msg, round(msg.timestamp * 1e9))
                problem = event.problem()
                if problem:
                    raise _fail(path, n, problem)
                events.append(event)
    except StimulusError:
        raise
    except Exception as exc:  # any parser failure of any python-can reader / asammdf
        raise _fail(path, len(events) + 1, f"unreadable ({type(exc).__name__}: {exc}); "
                    f"{len(events)} record(s) read before it; the file is corrupt or truncated") from None
    finally:
        log.removeHandler(failures)
        log.setLevel(level)
    if failures.failures:
        raise _fail(path, len(events) + 1, f"{failures.failures[0]}; the file is corrupt or truncated")
    return events


def _read_serial(path: Path) -> list[Event]:
    _check_text(path, "serial")
    events: list[Event] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            events.append(serialcap.parse_line(line))
        except ValueError as exc:
            raise StimulusError(f"{path}: line {n}: {exc}") from None
        if len(events) > 1 and events[-1].t_ns < events[-2].t_ns:
            raise StimulusError(f"{path}: line {n}: expected non-decreasing times, "
                                f"{events[-1].t_ns / 1e9:.9f} s comes after {events[-2].t_ns / 1e9:.9f} s")
    return events


def _read_mcap(path: Path) -> list[Event]:
    """A hil recording (or any MCAP with hil's CAN / serial schemas): every bus is a channel."""
    from hil.recording.loader import load

    try:
        rec = load(path, strict=True)
    except RecordingError as exc:
        raise StimulusError(str(exc)) from None
    events: list[Event] = []
    for bus in rec.buses:
        f = rec.frames(bus)
        for t, i, fl, n, row in zip(f.t_ns.tolist(), f.id.tolist(), f.flags.tolist(), f.dlc.tolist(), f.data):
            events.append(CanEvent(t, bus, i, fl & 0x3F, bytes(row[:n])))
    for bus, chunks in rec.serial.items():
        events.extend(SerialEvent(t, bus, data) for t, data in chunks)
    return events
