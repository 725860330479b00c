"""Bus faults an emulated CAN bus can inject, settable in a rig (always on) or a bench (for its run).

Times (``start``/``end``) are relative to the moment the fault is armed: rig start for rig faults,
the start of injection for bench faults.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt

from hil.canframe import FD_LENGTHS
from hil.spec.common import CanId, Duration, Spec



class _Window(Spec):
    start: Duration = 0
    end: Duration | None = Field(None, description="end of the window; open when absent")


class DropFault(_Window):
    """Frames vanish from the wire (nobody receives them, not even the sender's echo)."""

    kind: Literal["drop"]
    probability: StrictFloat = Field(1.0, ge=0.0, le=1.0)
    ids: list[CanId] | None = Field(None, description="only these ids; all when absent")


class DelayFault(_Window):
    """Frames reach the wire later than sent."""

    kind: Literal["delay"]
    by: Duration
    ids: list[CanId] | None = None


class CorruptFault(_Window):
    """Frames are damaged on the wire and delivered as error frames."""

    kind: Literal["corrupt"]
    probability: StrictFloat = Field(1.0, ge=0.0, le=1.0)
    ids: list[CanId] | None = None


class BusOffFault(_Window):
    """The bus carries nothing during the window."""

    kind: Literal["bus_off"]


class BabbleFault(_Window):
    """A babbling node floods one id at a rate (frames/s), or as fast as the wire allows."""

    kind: Literal["babble"]
    id: CanId
    rate: StrictFloat | None = Field(None, ge=0.001, le=100_000, description="frames per second; saturate when absent")
    dlc: StrictInt = Field(8, ge=0, le=64, description="payload bytes: 0..8, or a CAN FD length up to 64")


Fault = Annotated[
    DropFault | DelayFault | CorruptFault | BusOffFault | BabbleFault,
    Field(discriminator="kind"),
]


def fault_problems(faults: list, fd: bool) -> list[tuple[tuple, str]]:
    """What one field of a fault cannot say: a window that ends before it starts, a babble frame
    length no CAN frame has (or an FD length on a classic bus)."""
    out: list[tuple[tuple, str]] = []
    for i, fault in enumerate(faults):
        if fault.end is not None and fault.end <= fault.start:
            out.append(((i, "end"), "expected 'end' after 'start'"))
        if isinstance(fault, BabbleFault) and fault.dlc not in (FD_LENGTHS if fd else FD_LENGTHS[:9]):
            lengths = "0..8, 12, 16, 20, 24, 32, 48 or 64 (CAN FD)" if fd else "0..8 (a classic CAN bus)"
            out.append(((i, "dlc"), f"expected a frame length of {lengths}, got {fault.dlc}"))
    return out
