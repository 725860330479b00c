"""Faults armed on one emulated bus, and the decisions the broker asks them for, frame by frame.

Fault specs come from :mod:`hil.spec.faults`. Arming fixes the window on the run clock (``start`` /
``end`` are relative to the origin, by default the moment of arming). Every decision that changes a
frame is returned as a :class:`FaultEvent` so the broker can hand it to clients that record events.
Randomness (drop / corrupt probability) comes from a seeded generator: a run is reproducible.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from hil.spec.faults import BabbleFault, BusOffFault, CorruptFault, DelayFault, DropFault, Fault

FOREVER = 1 << 62


@lru_cache(maxsize=1)
def _adapter() -> TypeAdapter:
    return TypeAdapter(Fault)


def parse_fault(data: Any) -> Fault:  # data: the fault's JSON form, checked here
    """A fault spec from its JSON form; ValueError naming the first problem and what came."""
    try:
        return _adapter().validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ValueError(f"invalid fault: {where + ': ' if where else ''}{first['msg']} (got {data!r})") from None


@dataclass(frozen=True)
class FaultEvent:
    """One injected fault as clients see it: run-clock time, kind, CAN id (0 when none), detail."""

    t_ns: int
    kind: str
    id: int
    detail: dict[str, Any]

    def detail_json(self) -> bytes:
        return json.dumps(self.detail, separators=(",", ":")).encode()


@dataclass
class ArmedFault:
    fid: int
    spec: Fault
    start_ns: int
    end_ns: int
    next_ns: int = 0  # babble: when its next frame is ready
    sent: int = 0  # babble: frames sent so far

    def active(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns

    def matches(self, can_id: int) -> bool:
        ids = getattr(self.spec, "ids", None)
        return ids is None or can_id in ids

    def describe(self) -> dict[str, Any]:
        return {"fault": self.fid, "spec": self.spec.model_dump(mode="json"),
                "start_ns": self.start_ns, "end_ns": None if self.end_ns == FOREVER else self.end_ns}


class FaultSet:
    """The faults armed on one bus."""

    def __init__(self, seed: int | str = 0):
        self._rng = random.Random(seed)
        self._next_id = 1
        self.armed: list[ArmedFault] = []
        self.babblers: list[ArmedFault] = []

    def __bool__(self) -> bool:
        return bool(self.armed)

    def armed_events(self) -> list[FaultEvent]:
        """An ``armed`` event per fault armed now (for a node that joins later)."""
        return [FaultEvent(f.start_ns, "armed", getattr(f.spec, "id", 0), f.describe()) for f in self.armed]

    def arm(self, spec: Fault, origin_ns: int) -> tuple[ArmedFault, FaultEvent]:
        end = FOREVER if spec.end is None else origin_ns + spec.end
        fault = ArmedFault(self._next_id, spec, origin_ns + spec.start, end, next_ns=origin_ns + spec.start)
        self._next_id += 1
        self.armed.append(fault)
        if isinstance(spec, BabbleFault):
            self.babblers.append(fault)
        return fault, FaultEvent(origin_ns, "armed", getattr(spec, "id", 0), fault.describe())

    def clear(self, fid: int | None, now_ns: int) -> list[FaultEvent]:
        gone = [f for f in self.armed if fid is None or f.fid == fid]
        self.armed = [f for f in self.armed if f not in gone]
        self.babblers = [f for f in self.babblers if f not in gone]
        return [FaultEvent(now_ns, "cleared", getattr(f.spec, "id", 0), f.describe()) for f in gone]

    def delay(self, can_id: int, now_ns: int) -> tuple[int, FaultEvent | None]:
        """Extra delay before a frame received now may reach the wire."""
        by = sum(f.spec.by for f in self.armed
                 if isinstance(f.spec, DelayFault) and f.active(now_ns) and f.matches(can_id))
        if not by:
            return 0, None
        return by, FaultEvent(now_ns, "delay", can_id, {"by_ns": by})

    def on_wire(self, can_id: int, t_ns: int) -> FaultEvent | None:
        """What happens to a frame that wins arbitration at ``t_ns``: None (it goes through), or a
        ``bus_off`` / ``drop`` (it vanishes) or ``corrupt`` (it becomes an error frame) event."""
        for f in self.armed:
            if not f.active(t_ns):
                continue
            spec = f.spec
            if isinstance(spec, BusOffFault):
                kind = "bus_off"
            elif isinstance(spec, (DropFault, CorruptFault)) and f.matches(can_id) and (
                    spec.probability >= 1.0 or self._rng.random() < spec.probability):
                kind = spec.kind
            else:
                continue
            return FaultEvent(t_ns, kind, can_id, {"fault": f.fid})
        return None

    def babble_ready(self) -> ArmedFault | None:
        """The babbling node whose next frame is due first (None when none is armed or all ended)."""
        live = [f for f in self.babblers if f.next_ns < f.end_ns]
        return min(live, key=lambda f: f.next_ns) if live else None
