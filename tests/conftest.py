"""Shared fixtures: repository paths, state kept in temporary folders, and a guard that no test
leaves a child process behind."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from hil.lifecycle import procfs

ROOT = Path(__file__).resolve().parent.parent
#: The XDG folders hil's defaults live in (leases under the runtime folder, history under data).
XDG = ("XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")


def pytest_configure(config: pytest.Config) -> None:
    """Before any fixture runs (module and session ones too): leases, history and the XDG folders
    hil's defaults live in point into a temporary folder of this test run, in this process's
    environment, so every process a test starts inherits them — also one whose environment drops
    ``HIL_LOCK_DIR`` or ``HIL_HISTORY`` to use the defaults. (A run of the suite used to leave
    lock files in the user's own lease folder, which ``hil rig status`` then listed.)"""
    home = Path(tempfile.mkdtemp(prefix="hil-tests-"))
    config.stash[_HOME] = home
    for name in XDG:
        (home / name.lower()).mkdir(mode=0o700)
        os.environ[name] = str(home / name.lower())
    os.environ["HIL_LOCK_DIR"] = str(home / "locks")
    os.environ["HIL_HISTORY"] = str(home / "history.sqlite")


def pytest_unconfigure(config: pytest.Config) -> None:
    if home := config.stash.get(_HOME, None):
        shutil.rmtree(home, ignore_errors=True)


_HOME = pytest.StashKey[Path]()


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


@pytest.fixture(autouse=True)
def own_signal_handlers():
    """Fail a test that leaves a stop-signal handler of its own in pytest's process (hil's stop
    policy left installed once made Ctrl-C stop nothing for the rest of the run); the previous
    handlers are put back either way."""
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.getsignal(sig) for sig in signums}
    yield
    changed = {signal.Signals(sig).name for sig in signums if signal.getsignal(sig) != before[sig]}
    for sig, handler in before.items():
        signal.signal(sig, handler)
    assert not changed, f"test left its own handler for {sorted(changed)} installed"


def _commands(pids: set[int]) -> list[str]:
    return [f"{pid} {procfs.cmdline(pid) or '(gone)'}" for pid in sorted(pids)]
