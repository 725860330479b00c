"""A real little lab on loopback: a Dask scheduler process and ``hil worker`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RIGS = Path(__file__).with_name("rigs")
STARTUP_S = 120  # a loaded 2-core box can take long to import dask; this only bounds a hang


class Scheduler:
    """``dask scheduler`` on 127.0.0.1 with a random port; ``address`` once it listens."""

    def __init__(self, tmp: Path, *args: str):
        self.file = tmp / "scheduler.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(self.file), *args],
            stdout=subprocess.DEVNULL, stderr=open(tmp / "scheduler.log", "w"))
        deadline = time.monotonic() + STARTUP_S
        while not self.file.exists() or not self.file.read_text().strip().endswith("}"):
            assert self.proc.poll() is None, (tmp / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "scheduler did not start"
            time.sleep(0.1)
        self.address = json.loads(self.file.read_text())["address"]

    def stop(self) -> None:
        stop(self.proc)


class HilWorker:
    """``hil worker`` serving some rig files; returns once it has announced itself."""

    def __init__(self, scheduler: str, tmp: Path, *rigs: str, env: dict | None = None, args: tuple = ()):
        self.runs = tmp / "runs"
        self.log = tmp / "worker.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from hil.cli import main; main()", "worker", "--scheduler", scheduler,
             "--runs", str(self.runs), *args, *rigs],
            stdout=subprocess.PIPE, stderr=open(self.log, "w"), text=True,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "250", **(env or {})})
        self.banner = self.proc.stdout.readline()
        assert self.banner.startswith("worker "), self.banner + self.log.read_text()

    def stop(self) -> str:
        """SIGTERM, as a service manager would; returns what it printed on the way out."""
        return stop(self.proc)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""
