"""The stop policy in real processes: a serving loop is asked to end, a guest entry point's handlers
come back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


def test_only_the_lifecycle_layer_installs_signal_handlers():
    """Each entry point takes its stop policy from hil.lifecycle.signals: a handler installed
    anywhere else is a sixth behaviour nobody documented."""
    hil = Path(__file__).resolve().parents[2] / "hil"
    elsewhere = []
    for path in sorted(hil.rglob("*.py")):
        if path.parent.name == "lifecycle":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "signal"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "signal"):
                elsewhere.append(f"{path.relative_to(hil.parent)}:{node.lineno}")
    assert elsewhere == []
