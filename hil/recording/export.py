"""Export a recording's CAN frames to the log formats of other tools, with python-can's writers;
its networks' datagrams to pcapng (Wireshark, tshark), ns timestamps, injected and received alike.

Every CAN bus of the recording goes into one file, frames merged in time order. Formats with numeric
channels (BLF, ASC, TRC, MF4) get channel 1, 2, ... in the order of the bus names, as the file
holds them (python-can's BLF, ASC and TRC writers add 1 to a message's 0-based channel; its MF4
writer writes it as given); the mapping is returned so it can be shown. Frames the injector sent are
written as Tx.

Times are absolute, as these formats expect: run-clock time plus the recording's wall-clock anchor
(``epoch_offset_ns``), in Unix seconds, so BLF's start, the ASC and TRC header dates and MF4's start
time are when the recording was made. A recording without an anchor (made before hil kept one) is
written on the run clock, with a warning.

What a format cannot hold is counted before anything is written: python-can's TRC writer skips
remote, error and CAN FD frames; CSV has no channel column (several buses merge) and no CAN FD flags;
candump's ``.log`` loses a remote frame's DLC. Such an export raises :class:`ExportLoss` naming each
loss and its frame count, unless ``allow_loss`` is given; then the losses come back as warnings.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path

import can
import numpy as np

from hil.errors import RecordingError, UsageError
from hil.canframe import FLAG_ERROR, FLAG_FD, FLAG_REMOTE, FLAG_TX, to_message
from hil.recording.frames import Frames
from hil.recording.loader import load
from hil.spec.suite import format_unavailable

EXPORT_FORMATS = ("blf", "asc", "mf4", "csv", "log", "trc", "pcapng")
_NUMERIC_CHANNELS = ("blf", "asc", "mf4", "trc")
_WRITER_ADDS_ONE = ("blf", "asc", "trc")  # python-can's writers that write a message's channel + 1


class ExportLoss(UsageError):
    """The format cannot hold every frame (exit 2: ask again with ``--allow-loss``)."""


@dataclass
class Exported:
    """What :func:`export` wrote: bus → channel as it appears in the file, and what was lost."""

    channels: dict[str, str | int]
    warnings: list[str] = field(default_factory=list)


def export(recording: str | Path, out: str | Path, fmt: str | None = None,
           buses: list[str] | None = None, allow_loss: bool = False) -> Exported:
    """Write the CAN frames of ``recording`` (only ``buses`` if given) to ``out``."""
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"cannot export to {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if out.suffix.lstrip(".").lower() != fmt:
        raise UsageError(f"python-can picks the writer by suffix: name the file *.{fmt}, not {out.name}")
    if format_unavailable(fmt):
        raise UsageError(f"cannot export to {out}: {format_unavailable(fmt)}")
    rec = load(recording)
    if fmt == "pcapng":
        return _export_pcapng(rec, out, buses)
    names = buses or rec.buses
    frames = [rec.frames(b) for b in names]
    losses = _losses(fmt, frames)
    if losses and not allow_loss:
        raise ExportLoss(f"cannot export {recording} to {fmt.upper()} without loss: {'; '.join(losses)}; "
                         "pass --allow-loss to write the rest")
    anchor = rec.epoch_offset_ns
    warnings = [f"{fmt.upper()} export: {loss}" for loss in losses]
    if anchor is None:
        anchor = 0
        warnings.append(f"{recording} has no wall-clock anchor (recorded before hil kept one): "
                        "times are run-clock seconds, not dates")
    channels = {b: (i + 1 if fmt in _NUMERIC_CHANNELS else b) for i, b in enumerate(names)}
    shift = 1 if fmt in _WRITER_ADDS_ONE else 0
    streams = [_messages(f, anchor, ch - shift if isinstance(ch, int) else ch)
               for f, ch in zip(frames, channels.values())]
    try:
        writer = _AnchoredMF4Writer(out, (rec.started_ns + anchor) / 1_000_000_000) if fmt == "mf4" else can.Logger(out)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot write {out}: {exc}") from None
    try:
        for msg in heapq.merge(*streams, key=lambda m: m.timestamp):
            writer.on_message_received(msg)
    finally:
        writer.stop()
    return Exported(channels, warnings)


def _export_pcapng(rec, out: Path, nets: list[str] | None) -> Exported:
    """Every datagram of the recorded networks (only ``nets`` if given) — injected and received —
    as Ethernet/IPv4/UDP packets in one pcapng, in time order, at their Unix times (ns)."""
    from hil.net.capture import udp_frame, write_pcapng

    names = nets or sorted(rec.datagrams)
    unknown = [n for n in names if n not in rec.datagrams]
    if unknown:
        raise UsageError(f"{rec.path}: no network {', '.join(map(repr, unknown))} in the recording; it has: "
                         f"{', '.join(sorted(rec.datagrams)) or 'none'}")
    anchor = rec.epoch_offset_ns
    warnings = [] if anchor is not None else [f"{rec.path} has no wall-clock anchor: times are run-clock seconds"]
    merged = heapq.merge(*(rec.datagrams[n] for n in names), key=lambda d: d.t_ns)
    frames = ((d.t_ns + (anchor or 0), udp_frame(_endpoint(d.src), _endpoint(d.dst), d.data)) for d in merged)
    try:
        with open(out, "wb") as f:
            write_pcapng(f, frames, ",".join(names))
    except OSError as exc:
        raise RecordingError(f"cannot write {out}: {exc.strerror}") from None
    return Exported({n: n for n in names}, warnings)


def _endpoint(text: str) -> tuple[str, int]:
    address, _, port = text.rpartition(":")
    return address, int(port)


def _losses(fmt: str, frames: list[Frames]) -> list[str]:
    """What ``fmt`` cannot hold of ``frames`` (one bus each), with frame counts."""
    def count(flag: int) -> int:
        return sum(int(np.count_nonzero(f.flags & flag)) for f in frames)

    if fmt == "trc":
        found = {"remote": count(FLAG_REMOTE), "error": count(FLAG_ERROR), "CAN FD": count(FLAG_FD)}
        return [f"{n} {kind} frames left out (python-can's TRC writer cannot write them)"
                for kind, n in found.items() if n]
    losses = []
    if fmt == "csv":
        if len(frames) > 1:
            losses.append(f"{sum(map(len, frames))} frames of {len(frames)} buses merged into one "
                          "(CSV has no channel column)")
        if fd := count(FLAG_FD):
            losses.append(f"{fd} CAN FD frames lose their FD and BRS flags (CSV has no column for them)")
    if fmt == "log":
        asked = sum(int(np.count_nonzero(((f.flags & FLAG_REMOTE) != 0) & (f.dlc > 0))) for f in frames)
        if asked:
            losses.append(f"{asked} remote frames lose their DLC (python-can's candump writer writes none)")
    return losses


class _AnchoredMF4Writer(can.MF4Writer):
    """python-can's MF4 writer with the measurement's start time set to ``start_s`` (Unix seconds)
    instead of the moment of export, so tools show samples when they were measured."""

    def __init__(self, file: Path, start_s: float):
        super().__init__(file)
        self._mdf.header.start_time = datetime.fromtimestamp(start_s, UTC)
        self.last_timestamp = self._start_time = start_s


def _messages(f: Frames, anchor_ns: int, channel: str | int):
    for t, i, fl, n, row in zip(f.t_ns.tolist(), f.id.tolist(), f.flags.tolist(), f.dlc.tolist(), f.data):
        yield to_message(i, fl, bytes(row[:n]) if not fl & FLAG_REMOTE else b"", dlc=n, is_rx=not fl & FLAG_TX,
                         timestamp=(t + anchor_ns) / 1_000_000_000, channel=channel)
