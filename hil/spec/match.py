"""Frame conditions: "a frame with this id (and this signal condition) on this bus" — used by ready
conditions, closed-loop waits and latency probes alike — and their datagram counterpart, a
condition on a payload field (:class:`FieldMatch`, a datagram probe end's ``where``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt

from hil.spec.common import CanId, Line, Name, Spec

Op = Literal["==", "!=", "<", "<=", ">", ">="]
MAX_PAYLOAD = 65_507  # the largest UDP payload over IPv4


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


class FieldMatch(Spec):
    """A condition on a datagram's payload: the unsigned field at byte ``offset`` (``size`` bytes,
    ``order``) compared with ``value``. With ``repeat`` the field is one of an array of records,
    ``[[STRIDE, COUNT], ...]`` outermost first (a VLP-16 packet's reflectivity bytes: 12 blocks of
    100 bytes, 32 returns of 3 in each: ``offset: 6, repeat: [[100, 12], [3, 32]]``), and the
    condition holds when it holds for any of them."""

    offset: StrictInt = Field(ge=0, le=MAX_PAYLOAD)
    size: Literal[1, 2, 4, 8] = 1
    order: Literal["big", "little"] = "big"
    repeat: list[tuple[Annotated[StrictInt, Field(ge=1, le=MAX_PAYLOAD)], Annotated[StrictInt, Field(
        ge=1, le=MAX_PAYLOAD)]]] = Field(default_factory=list, max_length=4)
    op: Op = "=="
    value: StrictInt = Field(ge=0)

    @property
    def end(self) -> int:
        """The byte after the last repeat of the field: a shorter datagram does not hold it."""
        return self.offset + self.size + sum((count - 1) * stride for stride, count in self.repeat)

    def problems(self) -> list[tuple[tuple, str]]:
        out: list[tuple[tuple, str]] = []
        if self.end > MAX_PAYLOAD:
            out.append(((), f"the field's last repeat ends at byte {self.end:,}, beyond the largest UDP payload "
                            f"({MAX_PAYLOAD:,} bytes)"))
        if self.value >= 1 << (8 * self.size):
            out.append((("value",), f"a {self.size}-byte field holds at most {(1 << 8 * self.size) - 1:,}, "
                                    f"so {self.value:,} can never compare as meant"))
        return out
