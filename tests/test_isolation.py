"""No test reaches the user's lease, history or config folders: conftest points them, and hil's
defaults, at temporary folders that every process a test starts inherits."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hil.bench.lease import Lease, lock_dir
from hil.report.history import default_path
from tests.conftest import XDG
from tests.hilcli import hil

TMP = Path(tempfile.gettempdir()).resolve()


def _temporary(path: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(TMP)


def test_leases_history_and_xdg_folders_are_temporary(monkeypatch):
    assert _temporary(lock_dir()) and _temporary(default_path())
    for name in XDG:
        assert _temporary(os.environ[name]), name
    monkeypatch.delenv("HIL_LOCK_DIR")  # hil's own defaults: still not the user's folders
    monkeypatch.delenv("HIL_HISTORY")
    assert _temporary(lock_dir()) and _temporary(default_path())


def test_a_hil_process_without_hil_lock_dir_takes_leases_in_the_temporary_folder():
    assert _temporary(os.environ["XDG_RUNTIME_DIR"])
    with Lease("isolation-probe", directory=Path(os.environ["XDG_RUNTIME_DIR"]) / "hil" / "leases"):
        r = hil("rig", "status", "--json", env={"HIL_LOCK_DIR": None})
    assert r.returncode == 0, r.stderr
    assert [row["rig"] for row in json.loads(r.stdout) if row["held"]] == ["isolation-probe"]
