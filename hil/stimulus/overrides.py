"""Signal overrides: change stimulus frames on their way out through the DBC, so a bench can put
faults into the stimulus itself — set, scale, offset or freeze a signal, or drop a message for a
window (a sensor dropout).

Windows are stimulus time: nanoseconds from the start of the merged timeline, before rate and gap
skipping. A changed frame is decoded once, the overrides on its message change their signals in
order, and the frame is encoded once (cantools, strict: a value outside a signal's range is an
error naming the frame, not a silent clip); bits that no signal covers come out as zero. The work
is one pass over the frames, however many overrides there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cantools

from hil import dbc
from hil.errors import StimulusError
from hil.files import FileRefused
from hil.spec.suite import Override
from hil.stimulus.events import CanEvent, PacketEvent, SerialEvent


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


def apply_overrides(events: list[tuple[int, str, CanEvent | SerialEvent | PacketEvent]], overrides: Sequence[Override],
                    db: cantools.database.can.Database | None
                    ) -> tuple[list[tuple[int, str, CanEvent | SerialEvent | PacketEvent]], int]:
    """Apply ``overrides`` in order to ``(stimulus_t_ns, bus, event)`` items; returns the new list
    and how many frames were dropped.

    One pass over the frames, whatever the number of overrides: a frame is decoded once, the
    overrides on its message change its signals in order, and it is encoded once."""
    if not overrides:
        return events, 0
    plans = [(ov, _checked(ov, db, k), _what(ov, k)) for k, ov in enumerate(overrides)]
    by_id: dict[int, list[int]] = {}
    for k, (_, msg, _) in enumerate(plans):
        by_id.setdefault(msg.frame_id, []).append(k)
    frozen: list[float | None] = [None] * len(plans)
    dropped = 0
    out: list[tuple[int, str, CanEvent | SerialEvent | PacketEvent]] = []
    for item in events:
        t, bus, ev = item
        chain = by_id.get(ev.id) if isinstance(ev, CanEvent) else None
        if not chain or not isinstance(ev, CanEvent):  # (a chain is a CAN frame's)
            out.append(item)
            continue
        signals: dict | None = None
        changed: list[int] = []  # overrides that changed this frame
        kept = True
        for k in chain:
            ov, msg, what = plans[k]
            inside = ov.start <= t < (ov.end if ov.end is not None else 1 << 62)
            if ov.action == "drop":
                if inside:
                    kept = False
                    break
                continue
            if not inside and not (ov.action == "freeze" and t < ov.start):
                continue
            signals = signals if signals is not None else _decode(msg, ev, t, what)
            value = signals[ov.signal]
            if not inside:  # before a freeze window: the value it will hold
                frozen[k] = value
                continue
            if ov.action == "freeze" and frozen[k] is None:
                frozen[k] = value
            signals[ov.signal] = {"set": lambda: ov.value, "scale": lambda: value * ov.value,
                                  "offset": lambda: value + ov.value, "freeze": lambda: frozen[k]}[ov.action]()
            changed.append(k)
        if not kept:
            dropped += 1
        elif changed:
            assert signals is not None  # decoded by the override that changed it
            data = _encode(signals, t, [plans[k] for k in changed])
            out.append((t, bus, CanEvent(ev.t_ns, ev.channel, ev.id, ev.flags, data)))
        else:
            out.append(item)
    return out, dropped


def _what(ov: Override, k: int) -> str:
    return f"override {k + 1} ({ov.action} {ov.message}{'.' + ov.signal if ov.signal else ''})"


def _checked(ov: Override, db: cantools.database.can.Database | None, k: int) -> cantools.database.Message:
    """The DBC message ``ov`` changes, after checking it names what its action needs."""
    what = _what(ov, k)
    msg = message(db, ov.message, what)
    if ov.action != "drop":
        if ov.signal is None:
            raise StimulusError(f"{what}: '{ov.action}' needs 'signal'")
        if ov.signal not in [s.name for s in msg.signals]:
            raise StimulusError(f"{what}: message {ov.message!r} has no signal {ov.signal!r}; "
                                f"it has: {', '.join(s.name for s in msg.signals)}")
        if ov.action != "freeze" and ov.value is None:
            raise StimulusError(f"{what}: '{ov.action}' needs 'value'")
    return msg


def _encode(signals: dict, t: int, changers: list[tuple[Override, cantools.database.Message, str]]) -> bytes:
    """The frame of ``signals`` after the overrides ``changers`` changed them."""
    try:
        return changers[0][1].encode(signals, strict=True)
    except Exception as exc:
        what = "; ".join(w for _, _, w in changers)
        values = ", ".join(f"{ov.signal}={signals[ov.signal]}" for ov, _, _ in changers)
        raise StimulusError(f"{what}: frame at {t / 1e9:.6f} s: cannot encode {values}: {exc}") from None


def _decode(msg: cantools.database.Message, ev: CanEvent, t: int, what: str) -> dict:
    try:
        return dict(msg.decode(ev.data, decode_choices=False))
    except Exception as exc:
        raise StimulusError(f"{what}: frame at {t / 1e9:.6f} s does not decode "
                            f"({len(ev.data)} bytes): {exc}") from None
