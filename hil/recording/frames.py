"""Frames as numpy columns: what the recording loader produces and what analysis consumes.

One :class:`Frames` per bus. Columns are parallel arrays sorted by ``t_ns`` (run clock, the
end-of-frame time for CAN). ``data`` is a fixed 64-byte-wide uint8 matrix (classic frames use the
first ``dlc`` bytes, where ``dlc`` holds the payload length in bytes, not the DLC code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATA_WIDTH = 64


@dataclass(frozen=True)
class Frames:
    bus: str
    t_ns: np.ndarray  # int64
    id: np.ndarray  # uint32
    flags: np.ndarray  # uint8
    dlc: np.ndarray  # uint8, payload length in bytes
    data: np.ndarray  # uint8, shape (n, 64)

    def __len__(self) -> int:
        return len(self.t_ns)

    @classmethod
    def empty(cls, bus: str) -> Frames:
        return cls.from_arrays(bus, [], [], [], [], np.zeros((0, DATA_WIDTH), np.uint8))

    @classmethod
    def from_arrays(cls, bus, t_ns, ids, flags, dlc, data) -> Frames:
        return cls(bus, np.asarray(t_ns, np.int64), np.asarray(ids, np.uint32),
                   np.asarray(flags, np.uint8), np.asarray(dlc, np.uint8), np.asarray(data, np.uint8))

    def select(self, mask: np.ndarray) -> Frames:
        return Frames(self.bus, self.t_ns[mask], self.id[mask], self.flags[mask], self.dlc[mask], self.data[mask])

    def with_id(self, can_id: int) -> Frames:
        return self.select(self.id == can_id)
