"""Shared fixtures: repository paths, and a guard that no test leaves a child process behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root() -> Path:
    return ROOT


def _children() -> set[int]:
    """Live (non-zombie) child processes of this pytest process, from /proc."""
    me = os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(entry))
    return out


@pytest.fixture(autouse=True)
def no_orphans():
    """Fail a test that leaves a child process of pytest running."""
    before = _children()
    yield
    deadline = time.monotonic() + 3.0  # a child that was told to stop may take a moment to go
    while (left := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"test left child processes running: {sorted(left)}"
