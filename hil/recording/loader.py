"""Recording → numpy columns per bus, console lines, events and metadata.

Reads the MCAP record stream front to back, so a file whose writer was killed (no summary, a cut
last chunk) still loads up to its last complete chunk; ``Recording.complete`` says whether the file
was closed properly. Message payloads are decoded a whole topic at a time (one JSON parse per topic,
not per frame), which keeps loading fast.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import EndOfFile
from mcap.records import Channel, Footer, Message, Metadata
from mcap.stream_reader import StreamReader

from hil.errors import RecordingError
from hil.recording import schema
from hil.recording.frames import DATA_WIDTH, FLAG_TX, Frames
from hil.targets.base import ConsoleLine


@dataclass(frozen=True)
class RecordedEvent:
    t_ns: int
    kind: str
    data: dict[str, Any]


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

    @property
    def buses(self) -> list[str]:
        return sorted(self.can)

    def frames(self, bus: str) -> Frames:
        if bus not in self.can:
            raise RecordingError(f"{self.path}: no CAN bus {bus!r} in the recording; "
                                 f"it has: {', '.join(self.buses) or 'none'}")
        return self.can[bus]


def load(path: str | Path, strict: bool = False) -> Recording:
    """Load a recording. ``strict``: a file cut short (no footer) is an error instead of being
    read up to its last complete record."""
    path = Path(path)
    topics: dict[int, str] = {}
    payloads: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    metadata: dict[str, str] = {}
    complete = False
    count = 0
    try:
        with open(path, "rb") as f:
            for r in StreamReader(f, validate_crcs=True).records:  # chunks come broken up
                count += 1
                if isinstance(r, Message):
                    payloads[topics[r.channel_id]].append((r.log_time, r.data))
                elif isinstance(r, Channel):
                    topics[r.id] = r.topic
                elif isinstance(r, Metadata) and r.name == schema.METADATA_NAME:
                    metadata = dict(r.metadata)
                elif isinstance(r, Footer):
                    complete = True
    except EndOfFile:
        if strict:
            raise RecordingError(f"{path}: the file ends inside record {count + 1}; it is truncated") from None
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such recording") from None
    except Exception as exc:  # a cut or corrupt record: keep what came before it
        if strict or count == 0:
            raise RecordingError(f"{path}: record {count + 1}: unreadable MCAP ({type(exc).__name__}: "
                                 f"{exc}); {count} record(s) read before it") from None
    if strict and not complete:
        raise RecordingError(f"{path}: the file ends after record {count} without an MCAP footer; "
                             "it is truncated")
    return _assemble(path, metadata, complete, payloads)


def _assemble(path: Path, metadata: dict[str, str], complete: bool,
              payloads: dict[str, list[tuple[int, bytes]]]) -> Recording:
    rec = Recording(path, metadata, complete)
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
    return rec


def _times(items: list[tuple[int, bytes]]) -> list[int]:
    return [t for t, _ in items]


def _decode(items: list[tuple[int, bytes]]) -> list[dict]:
    return json.loads(b"[" + b",".join(p for _, p in items) + b"]")


def _frames(bus: str, items: list[tuple[int, bytes]]) -> Frames:
    n = len(items)
    t_ns = np.fromiter((t for t, _ in items), np.int64, n)
    decoded = _decode(items)
    ids = np.fromiter((m["id"] for m in decoded), np.uint32, n)
    flags = np.fromiter((m["flags"] for m in decoded), np.uint8, n)
    dlc = np.fromiter((m["dlc"] for m in decoded), np.uint8, n)
    data = np.zeros((n, DATA_WIDTH), np.uint8)
    for row, m in zip(data, decoded):
        row[:len(m["data"])] = m["data"]
    order = np.argsort(t_ns, kind="stable")
    return Frames(bus, t_ns[order], ids[order], flags[order], dlc[order], data[order])


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
