"""Bus faults an emulated CAN bus can inject, settable in a rig (always on) or a bench (for its run).

Times (``start``/``end``) are relative to the moment the fault is armed: rig start for rig faults,
the start of injection for bench faults.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from hil.spec.common import CanId, Duration, Spec


class _Window(Spec):
    start: Duration = 0
    end: Duration | None = Field(None, description="end of the window; open when absent")


class DropFault(_Window):
    """Frames vanish from the wire (nobody receives them, not even the sender's echo)."""

    kind: Literal["drop"]
    probability: float = Field(1.0, ge=0.0, le=1.0)
    ids: list[CanId] | None = Field(None, description="only these ids; all when absent")


class DelayFault(_Window):
    """Frames reach the wire later than sent."""

    kind: Literal["delay"]
    by: Duration
    ids: list[CanId] | None = None


class CorruptFault(_Window):
    """Frames are damaged on the wire and delivered as error frames."""

    kind: Literal["corrupt"]
    probability: float = Field(1.0, ge=0.0, le=1.0)
    ids: list[CanId] | None = None


class BusOffFault(_Window):
    """The bus carries nothing during the window."""

    kind: Literal["bus_off"]


class BabbleFault(_Window):
    """A babbling node floods one id at a rate (frames/s), or as fast as the wire allows."""

    kind: Literal["babble"]
    id: CanId
    rate: float | None = Field(None, gt=0, description="frames per second; saturate when absent")
    dlc: int = Field(8, ge=0, le=64)


Fault = Annotated[
    Union[DropFault, DelayFault, CorruptFault, BusOffFault, BabbleFault],
    Field(discriminator="kind"),
]
