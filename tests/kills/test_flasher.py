"""A flasher command stopped mid-flash (Ctrl-C, SIGTERM) ends with everything it started, even a
helper that left with ``setsid``: it ran on, unsupervised, after the run had ended."""

from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest

from hil.flash import command
from hil.lifecycle import procfs
from hil.spec.rig import CommandFlash

from .procs import MARK, marked


def test_a_stopped_flash_leaves_nothing_running(monkeypatch):
    token = uuid.uuid4().hex
    monkeypatch.setenv(MARK, token)
    spec = CommandFlash(method="command", argv=["sh", "-c", "setsid sleep 600 & sleep 600 & echo flashing; wait"],
                        timeout="600s")
    started = time.monotonic()

    def ctrl_c() -> None:
        while len(marked(token)) < 3 and time.monotonic() - started < 60:  # sh and both sleeps
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        command.flash(spec, {})
    assert [procfs.cmdline(p) for p in marked(token)] == []
