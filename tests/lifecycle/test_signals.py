"""The stop policy in real processes: a serving loop is asked to end, a guest entry point's handlers
come back."""

from __future__ import annotations

import subprocess
import sys

SERVING = """
import os, signal, threading
from hil.lifecycle import signals

signals.install()
asked = threading.Event()
with signals.stopping(asked.set):
    os.kill(os.getpid(), signal.SIGTERM)  # the handler asks instead of raising here
    print("asked" if asked.wait(60) else "not asked", signals.received() == signal.SIGTERM, flush=True)
"""

GUEST = """
import signal
from hil.lifecycle import signals

def mine(*_): pass
signal.signal(signal.SIGTERM, mine)
with signals.installed():
    inside = signal.getsignal(signal.SIGTERM)
print(inside is not mine, signal.getsignal(signal.SIGTERM) is mine, flush=True)
"""


def run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"HIL_TEARDOWN_GRACE_S": "60", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_serving_loop_is_asked_to_end_instead_of_being_interrupted():
    assert run(SERVING) == "asked True\n"


def test_a_guest_entry_point_gets_the_policy_for_its_block_and_gives_the_handlers_back():
    assert run(GUEST) == "True True\n"
