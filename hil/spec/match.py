"""Frame conditions: "a frame with this id (and this signal condition) on this bus".

Used by ready conditions, closed-loop waits and latency probes alike.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictFloat

from hil.spec.common import CanId, Line, Name, Spec

Op = Literal["==", "!=", "<", "<=", ">", ">="]


class FrameMatch(Spec):
    """Matches frames on ``bus`` by id or DBC message name, optionally on one signal's value."""

    bus: Name
    id: CanId | None = None
    message: Line | None = Field(None, description="DBC message name (instead of id)")
    signal: Line | None = Field(None, description="DBC signal of that message")
    op: Op | None = None
    value: StrictFloat | None = None

    def problems(self) -> list[tuple[tuple, str]]:
        out: list[tuple[tuple, str]] = []
        if (self.id is None) == (self.message is None):
            out.append(((), "expected exactly one of 'id' or 'message'"))
        if (self.op is None) != (self.value is None):
            out.append(((), "'op' and 'value' go together"))
        if self.op is not None and self.signal is None:
            out.append((("op",), "a signal condition needs 'signal'"))
        return out
