"""Run-time control of one emulated CAN bus: arm and clear faults, read bus statistics.

Talks to the broker over its own control-only connection (it receives no frames), so it never
competes with the nodes for the bus.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from hil.errors import BusError, SpecError

if TYPE_CHECKING:
    from hil.spec.faults import Fault


class BusControl:
    """Faults and statistics of one emulated bus (``RigBuses.faults(name)``)."""

    def __init__(self, name: str, channel: str):
        import can

        from hil.simbus.plugin import SimCanBus

        self.name = name
        try:
            self._bus = SimCanBus(channel, control_only=True, name=f"control:{name}")
        except can.CanError as exc:
            raise BusError(f"bus {name}: {exc}") from None
        self._lock = threading.Lock()

    def arm(self, fault: Fault | dict[str, Any], origin_ns: int | None = None) -> int:
        """Arm ``fault`` (a :mod:`hil.spec.faults` model or its dict); its window starts at
        ``origin_ns`` on the run clock (now when None). Returns the fault's id for :meth:`clear`."""
        spec = fault.model_dump(mode="json") if hasattr(fault, "model_dump") else fault
        reply = self._request({"op": "arm", "fault": spec, "origin_ns": origin_ns})
        if "error" in reply:
            raise SpecError(f"bus {self.name}: {reply['error']}")
        return reply["fault"]

    def clear(self, fault_id: int | None = None) -> list[int]:
        """Disarm one fault (or all when None); returns the ids cleared."""
        return self._request({"op": "clear", "fault": fault_id})["cleared"]

    def armed(self) -> list[dict[str, Any]]:
        """The armed faults: id, spec, start_ns and end_ns (None: open) on the run clock."""
        return self._request({"op": "faults"})["faults"]

    def stats(self) -> dict[str, Any]:
        """frames, error_frames, faulted, busy_ns, load (busy share since the bus came up), clients,
        pending, overruns."""
        return self._request({"op": "stats"})

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        import can

        with self._lock:
            try:
                return self._bus.control(request)
            except can.CanError as exc:
                raise BusError(f"bus {self.name}: {exc}") from None

    def close(self) -> None:
        self._bus.shutdown()
