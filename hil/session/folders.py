"""Where a command's folder goes, what it is called and what lies in it: the one run-folder policy.

==========================  ========================================================  =========
entry point                 its folder                                                kept
==========================  ========================================================  =========
``hil run``                 ``--out``, else ``runs/SUITE-YYYYmmdd-HHMMSS`` (UTC)      yes
  each bench                ``RUN/BENCH``, ``RUN/BENCH#N`` for repeat N (its run key)  yes
``hil deploy``              ``--run-dir``, else ``runs/deploy-STACK-YYYYmmdd-HHMMSS``  yes
pytest plugin               ``--hil-runs/TEST``, else the test's ``tmp_path``         yes
``hil flash``               ``--run-dir``, else a temporary ``hil-flash-*``           if given
``hil replay``, ``record``  a temporary ``hil-COMMAND-*`` (bus sockets only)          no
==========================  ========================================================  =========

Inside a rig session's folder: ``recording.mcap``, the console logs ``SOURCE.log`` — in ``console/``
for a bench (``hil run``, the pytest plugin: docs/results.md), in ``consoles/`` for ``hil deploy``
and the commands —, ``simbus/`` (the broker's sockets, 0700), ``targets/TARGET/`` (sandboxes, an
MCU's flash) and the stack's bundle.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

RUNS = Path("runs")
RECORDING = "recording.mcap"
CONSOLES = "consoles"
BENCH_CONSOLES = "console"


def run_folder(name: str, given: str | Path | None, started: datetime) -> Path:
    """``given``, else ``runs/NAME-YYYYmmdd-HHMMSS`` with ``started`` (UTC), relative to the current folder."""
    return Path(given) if given else RUNS / f"{name}-{started:%Y%m%d-%H%M%S}"


@contextmanager
def scratch_folder(command: str, given: str | Path | None = None) -> Iterator[Path]:
    """``given`` (kept), else a temporary folder ``hil-COMMAND-*`` removed when the block ends."""
    if given:
        yield Path(given)
        return
    with tempfile.TemporaryDirectory(prefix=f"hil-{command}-") as folder:
        yield Path(folder)


def safe_name(text: str) -> str:
    """``text`` as one file name: every run of characters other than letters, digits, ``_.-`` is ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
