"""Synthetic recordings: Frames built from known timestamps and payloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hil.analysis import Database
from hil.recording.frames import DATA_WIDTH, Frames

HERE = Path(__file__).parent


def make_frames(bus: str, rows: list[tuple[int, int, bytes]], flags: int = 0) -> Frames:
    """Frames from (t_ns, id, payload) rows, sorted by time as a recording is."""
    rows = sorted(rows, key=lambda r: r[0])
    data = np.zeros((len(rows), DATA_WIDTH), np.uint8)
    for i, (_, _, payload) in enumerate(rows):
        data[i, : len(payload)] = np.frombuffer(payload, np.uint8)
    return Frames.from_arrays(bus, [r[0] for r in rows], [r[1] for r in rows], [flags] * len(rows),
                              [len(r[2]) for r in rows], data)


def merge(bus: str, *parts: Frames) -> Frames:
    t = np.concatenate([p.t_ns for p in parts])
    order = np.argsort(t, kind="stable")
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])[order]  # noqa: E731
    return Frames(bus, cat("t_ns"), cat("id"), cat("flags"), cat("dlc"), cat("data"))


@pytest.fixture
def db() -> Database:
    return Database([HERE / "probes.dbc"])
