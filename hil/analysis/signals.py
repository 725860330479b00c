"""Signal values as numpy columns: DBC signals (via cantools definitions) and raw payload bytes.

cantools decodes one message at a time; analysis needs a whole column at once, so the bit layout of
each signal is taken from cantools (start bit, length, byte order, sign, scale, offset) and applied to
the ``data`` matrix of a :class:`~hil.recording.frames.Frames` in a few vector operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil.errors import AnalysisError
from hil.canframe import FLAG_ERROR, FLAG_REMOTE
from hil.recording.frames import Frames


@dataclass(frozen=True)
class Column:
    """Values of one field per frame: ``t_ns`` and ``value`` are parallel; frames too short for the
    field are left out."""

    t_ns: np.ndarray
    value: np.ndarray
    unit: str = ""


class Database:
    """The DBC files of a bench, merged; looks messages up by name or id."""

    def __init__(self, paths: Iterable[str | Path] = ()):
        import cantools

        self.db = cantools.database.Database()
        for path in paths:
            self.add(path)

    def add(self, path: str | Path) -> None:
        """Merge one DBC file (read by :mod:`hil.dbc`); AnalysisError says why it cannot be read."""
        from hil.dbc import add_dbc
        from hil.files import FileRefused

        try:
            add_dbc(self.db, path)
        except FileRefused as exc:
            raise AnalysisError(str(exc)) from None

    def message(self, name_or_id: str | int):
        try:
            if isinstance(name_or_id, int):
                return self.db.get_message_by_frame_id(name_or_id)
            return self.db.get_message_by_name(name_or_id)
        except KeyError:
            known = ", ".join(sorted(m.name for m in self.db.messages)) or "none (no DBC loaded)"
            what = f"id {name_or_id:#x}" if isinstance(name_or_id, int) else repr(name_or_id)
            raise AnalysisError(f"no DBC message {what}; known messages: {known}") from None

    def signal(self, message: str | int, signal: str):
        msg = self.message(message)
        try:
            return msg, msg.get_signal_by_name(signal)
        except KeyError:
            known = ", ".join(s.name for s in msg.signals)
            raise AnalysisError(f"message {msg.name!r} has no signal {signal!r}; it has: {known}") from None


def frames_with_id(buses: Mapping[str, Frames], bus: str, can_id: int) -> Frames:
    """The data frames (no error or remote frames) with ``can_id`` on ``bus`` of a recording."""
    if bus not in buses:
        raise AnalysisError(f"bus {bus!r} is not in the recording; it has: {', '.join(sorted(buses)) or 'no buses'}")
    frames = buses[bus].with_id(can_id)
    return frames.select((frames.flags & (FLAG_ERROR | FLAG_REMOTE)) == 0)


def byte_column(frames: Frames, byte: int) -> Column:
    """Payload byte ``byte`` of every frame long enough to have it."""
    keep = frames.dlc > byte
    return Column(frames.t_ns[keep], frames.data[keep, byte].astype(np.int64))


def signal_column(frames: Frames, signal, raw: bool = False, message=None) -> Column:
    """Decode a cantools ``signal`` from every frame (scaled unless ``raw``). A multiplexed signal
    (``message`` names its multiplexer) is read only from the frames whose multiplexer selects it:
    the other frames carry other signals in those bits."""
    keep, value = _raw_bits(frames, signal)
    if signal.multiplexer_ids and message is not None:
        selected, selector = _raw_bits(frames, message.get_signal_by_name(signal.multiplexer_signal))
        keep &= selected & np.isin(selector, np.asarray(signal.multiplexer_ids, np.uint64))
    value = value[keep]
    if signal.is_float:
        out = value.astype(np.uint32).view(np.float32).astype(np.float64) if signal.length == 32 \
            else value.view(np.float64)
    elif signal.is_signed:
        out = value.astype(np.int64)
        if signal.length < 64:
            sign = np.int64(1) << np.int64(signal.length - 1)
            out = (out ^ sign) - sign
    else:
        out = value.astype(np.int64) if signal.length < 64 else value
    if not raw:
        out = out * float(signal.scale) + float(signal.offset)
    return Column(frames.t_ns[keep], out, signal.unit or "")


def _raw_bits(frames: Frames, signal) -> tuple[np.ndarray, np.ndarray]:
    """Which frames are long enough to hold ``signal``, and its raw bits in each frame (as uint64)."""
    positions = bit_positions(signal.start, signal.length, signal.byte_order)
    lo, hi = min(positions) // 8, max(positions) // 8 + 1
    bits = np.unpackbits(frames.data[:, lo:hi], axis=1, bitorder="little").astype(np.uint64)
    value = np.zeros(len(frames.t_ns), np.uint64)
    for weight, pos in enumerate(positions):  # ≤ 64 vector operations, whatever the frame count
        value |= bits[:, pos - 8 * lo] << np.uint64(weight)
    return frames.dlc >= hi, value


def bit_positions(start: int, length: int, byte_order: str) -> list[int]:
    """Absolute bit indices (byte * 8 + bit) of a signal, least significant bit first.

    Intel (little-endian) signals run upwards from ``start``; Motorola (big-endian) signals start at
    their most significant bit and run down each byte, then on to the next byte's top bit."""
    if byte_order == "little_endian":
        return list(range(start, start + length))
    msb_first = [start]
    while len(msb_first) < length:
        pos = msb_first[-1]
        msb_first.append(pos + 15 if pos % 8 == 0 else pos - 1)
    return msb_first[::-1]
