"""Export a recording's CAN frames to the log formats of other tools, with python-can's writers.

Every CAN bus of the recording goes into one file, frames merged in time order. Formats with numeric
channels (BLF, ASC, MF4) get channel 1, 2, ... in the order of the bus names; the mapping is returned
so it can be shown. Timestamps are run-clock seconds. Frames the injector sent are written as Tx.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import can

from hil.errors import RecordingError, UsageError
from hil.recording.frames import (FLAG_BRS, FLAG_ERROR, FLAG_ESI, FLAG_EXTENDED, FLAG_FD, FLAG_REMOTE, FLAG_TX,
                                  Frames)
from hil.recording.loader import load
from hil.spec.suite import format_unavailable

EXPORT_FORMATS = ("blf", "asc", "mf4", "csv", "log", "trc")
_NUMERIC_CHANNELS = ("blf", "asc", "mf4", "trc")


def export(recording: str | Path, out: str | Path, fmt: str | None = None,
           buses: list[str] | None = None) -> dict[str, str | int]:
    """Write the CAN frames of ``recording`` (only ``buses`` if given) to ``out``; returns
    bus → channel as written."""
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"cannot export to {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if out.suffix.lstrip(".").lower() != fmt:
        raise UsageError(f"python-can picks the writer by suffix: name the file *.{fmt}, not {out.name}")
    if format_unavailable(fmt):
        raise UsageError(f"cannot export to {out}: {format_unavailable(fmt)}")
    rec = load(recording)
    names = buses or rec.buses
    channels = {b: (i + 1 if fmt in _NUMERIC_CHANNELS else b) for i, b in enumerate(names)}
    streams = [_messages(rec.frames(b), channels[b]) for b in names]
    try:
        writer = can.Logger(out)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot write {out}: {exc}") from None
    try:
        for msg in heapq.merge(*streams, key=lambda m: m.timestamp):
            writer.on_message_received(msg)
    finally:
        writer.stop()
    return channels


def _messages(f: Frames, channel: str | int):
    for t, i, fl, n, row in zip(f.t_ns.tolist(), f.id.tolist(), f.flags.tolist(), f.dlc.tolist(), f.data):
        yield can.Message(timestamp=t / 1e9, arbitration_id=i, data=bytes(row[:n]) if not fl & FLAG_REMOTE else b"",
                          dlc=n, is_extended_id=bool(fl & FLAG_EXTENDED), is_remote_frame=bool(fl & FLAG_REMOTE),
                          is_error_frame=bool(fl & FLAG_ERROR), is_fd=bool(fl & FLAG_FD),
                          bitrate_switch=bool(fl & FLAG_BRS), error_state_indicator=bool(fl & FLAG_ESI),
                          is_rx=not fl & FLAG_TX, channel=channel, check=False)
