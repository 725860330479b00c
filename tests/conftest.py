"""Shared fixtures: repository paths, state kept in temporary folders, and a guard that no test
leaves a child process behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hil.lifecycle import procfs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root() -> Path:
    return ROOT


def _children() -> set[int]:
    """Live (non-zombie) child processes of this pytest process, from /proc."""
    me = os.getpid()
    return {s.pid for s in procfs.processes().values() if s.ppid == me and not s.zombie}


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's leases and history live in a temporary folder of its own, never in the user's
    (a test took the lease of a rig in the user's lock folder, where another run on the host held
    it); hil commands a test starts inherit them."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("HIL_LOCK_DIR", str(state / "locks"))
    monkeypatch.setenv("HIL_HISTORY", str(state / "history.sqlite"))


@pytest.fixture(autouse=True)
def no_orphans():
    """Fail a test that leaves a child process of pytest running."""
    before = _children()
    yield
    deadline = time.monotonic() + 3.0  # a child that was told to stop may take a moment to go
    while (left := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"test left child processes running: {_commands(left)}"


def _commands(pids: set[int]) -> list[str]:
    return [f"{pid} {procfs.cmdline(pid) or '(gone)'}" for pid in sorted(pids)]
