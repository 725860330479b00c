"""Console lines of a session's targets: one text file per source in the session's folder, and into
the recording while one runs. Lines arrive from the drivers' reader threads, hence the lock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from hil.session.folders import safe_name
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.recording import Recorder


class Consoles:
    def __init__(self, folder: Path):
        self.folder = folder
        self.recorder: Recorder | None = None
        self.paths: dict[str, Path] = {}
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def add(self, line: ConsoleLine) -> None:
        with self._lock:
            f = self._files.get(line.source)
            if f is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / f"{safe_name(line.source)}.log"
                f = self._files[line.source] = path.open("a", encoding="utf-8")
                self.paths[line.source] = path
            f.write(f"{line.t_ns / 1e9:.6f} {line.stream} {line.text}\n")
            f.flush()
            if self.recorder is not None:
                self.recorder.console(line)

    def detach(self) -> None:
        """Stop forwarding to the recorder (it is about to close)."""
        with self._lock:
            self.recorder = None

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
