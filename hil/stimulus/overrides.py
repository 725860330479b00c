"""Signal overrides: change stimulus frames on their way out through the DBC, so a bench can put
faults into the stimulus itself — set, scale, offset or freeze a signal, or drop a message for a
window (a sensor dropout).

Windows are stimulus time: nanoseconds from the start of the merged timeline, before rate and gap
skipping. A changed frame is decoded, the one signal is changed, and the frame is encoded again
(cantools, strict: a value outside the signal's range is an error naming the frame, not a silent
clip); bits that no signal covers come out as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cantools

from hil import dbc
from hil.errors import StimulusError
from hil.files import FileRefused
from hil.spec.suite import Override
from hil.stimulus.events import CanEvent


def load_dbc(paths: Sequence[Path]) -> cantools.database.can.Database | None:
    """All DBC files merged into one database by :mod:`hil.dbc` (None when there are none)."""
    if not paths:
        return None
    try:
        return dbc.load_dbc(paths)
    except FileRefused as exc:
        raise StimulusError(str(exc)) from None


def message(db: cantools.database.can.Database | None, name: str, what: str) -> cantools.database.Message:
    """The DBC message ``name``; an error that lists what the DBC has otherwise."""
    if db is None:
        raise StimulusError(f"{what} names message {name!r}, but the stimulus has no 'dbc' files")
    try:
        return db.get_message_by_name(name)
    except KeyError:
        known = ", ".join(sorted(m.name for m in db.messages)[:20])
        raise StimulusError(f"{what} names message {name!r}, which is not in the DBC; it has: {known}") from None


def apply_overrides(events: list[tuple[int, str, CanEvent]], overrides: Sequence[Override],
                    db: cantools.database.can.Database | None) -> tuple[list[tuple[int, str, CanEvent]], int]:
    """Apply ``overrides`` in order to ``(stimulus_t_ns, bus, event)`` items; returns the new list
    and how many frames were dropped."""
    dropped = 0
    for k, ov in enumerate(overrides):
        what = f"override {k + 1} ({ov.action} {ov.message}{'.' + ov.signal if ov.signal else ''})"
        msg = message(db, ov.message, what)
        if ov.action != "drop":
            if ov.signal is None:
                raise StimulusError(f"{what}: '{ov.action}' needs 'signal'")
            if ov.signal not in [s.name for s in msg.signals]:
                raise StimulusError(f"{what}: message {ov.message!r} has no signal {ov.signal!r}; "
                                    f"it has: {', '.join(s.name for s in msg.signals)}")
            if ov.action != "freeze" and ov.value is None:
                raise StimulusError(f"{what}: '{ov.action}' needs 'value'")
        end = ov.end if ov.end is not None else 1 << 62
        out: list[tuple[int, str, CanEvent]] = []
        frozen: float | None = None
        for item in events:
            t, bus, ev = item
            if not isinstance(ev, CanEvent) or ev.id != msg.frame_id:
                out.append(item)
                continue
            if not ov.start <= t < end:
                if ov.action == "freeze" and t < ov.start:
                    frozen = _decode(msg, ev, t, what)[ov.signal]
                out.append(item)
                continue
            if ov.action == "drop":
                dropped += 1
                continue
            signals = _decode(msg, ev, t, what)
            if ov.action == "freeze" and frozen is None:
                frozen = signals[ov.signal]
            value = signals[ov.signal]
            signals[ov.signal] = {"set": lambda: ov.value, "scale": lambda: value * ov.value,
                                  "offset": lambda: value + ov.value, "freeze": lambda: frozen}[ov.action]()
            try:
                data = msg.encode(signals, strict=True)
            except Exception as exc:
                raise StimulusError(f"{what}: frame at {t / 1e9:.6f} s: cannot encode "
                                    f"{ov.signal}={signals[ov.signal]}: {exc}") from None
            out.append((t, bus, CanEvent(ev.t_ns, ev.channel, ev.id, ev.flags, data)))
        events = out
    return events, dropped


def _decode(msg: cantools.database.Message, ev: CanEvent, t: int, what: str) -> dict:
    try:
        return dict(msg.decode(ev.data, decode_choices=False))
    except Exception as exc:
        raise StimulusError(f"{what}: frame at {t / 1e9:.6f} s does not decode "
                            f"({len(ev.data)} bytes): {exc}") from None
