"""The one way a test runs the ``hil`` command line: a real process (``python -m hil``), its output
captured as text, in an environment that inherits the test's private state (conftest's isolation)
without the user's ``HIL_RIG`` or ``NO_COLOR``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HIL = (sys.executable, "-m", "hil")
PLAIN = {"NO_COLOR": "1", "COLUMNS": "200"}  # no colours, wide lines: output compared exactly


def hil_env(env: dict[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment less ``HIL_RIG`` and ``NO_COLOR``, updated by ``env`` (a value of
    None removes the name)."""
    full = {k: v for k, v in os.environ.items() if k not in ("HIL_RIG", "NO_COLOR")}
    for name, value in (env or {}).items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return full


def hil(*args: str, cwd: Path = ROOT, env: dict[str, str | None] | None = None, timeout: float = 120,
        command: tuple[str, ...] = HIL, **kw) -> subprocess.CompletedProcess:
    """Run ``hil ARGS`` in ``cwd`` and wait for it (at most ``timeout`` seconds)."""
    return subprocess.run([*command, *args], cwd=cwd, env=hil_env(env), capture_output=True, text=True,
                          timeout=timeout, **kw)
DEFAULT_HISTORY = {"HIL_HISTORY": None}  # the history where hil keeps it by default (conftest: a temporary folder)
