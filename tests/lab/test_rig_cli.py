"""``hil rig status``: the lease holder as a lab engineer sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hil.bench.lease import Lease

from .test_lease import Holder

HIL = [sys.executable, "-c", "from hil.cli import main; main()"]


def hil(lock_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HIL_LOCK_DIR": str(lock_dir), "NO_COLOR": "1", "COLUMNS": "250",
           "HIL_HISTORY": str(lock_dir / "history.sqlite")}
    return subprocess.run([*HIL, *args], capture_output=True, text=True, env=env, timeout=60)


def test_status_shows_holder_then_free(tmp_path, root):
    holder = Holder(tmp_path, "sim-minimal")
    rec = holder.held()
    out = hil(tmp_path, "rig", "status", str(root / "rigs" / "sim-minimal.yaml"), "other")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["rig", "lease", "health", "holder"]
    assert lines[1].split()[:5] == ["sim-minimal", "held", "unknown", "pid", str(rec["pid"])]
    assert "running 'lease_holder sim-minimal'" in lines[1] and "CI job nightly#42" in lines[1]
    assert lines[2].split() == ["other", "free", "—"]
    holder.release()
    out = hil(tmp_path, "rig", "status", "--json")
    assert json.loads(out.stdout) == [{"rig": "sim-minimal", "held": False, "stale": False, "holder": None,
                                       "health": None}]


def test_status_of_a_leftover_lease(tmp_path):
    holder = Holder(tmp_path, "sim-a")
    rec = holder.held()
    holder.proc.kill()
    holder.finish()
    out = hil(tmp_path, "rig", "status")
    assert out.stdout.splitlines()[1].split()[:7] == ["sim-a", "free", "—", "left", "over", "from", "pid"]
    assert "reclaimed on next use" in out.stdout
    with Lease("sim-a", directory=tmp_path):
        assert json.loads(hil(tmp_path, "rig", "status", "sim-a", "--json").stdout)[0]["holder"]["pid"] == os.getpid()
    assert rec["pid"] != os.getpid()


def test_status_with_no_rigs_and_bad_rig_file(tmp_path):
    assert hil(tmp_path, "rig", "status").stdout == "no rig has been leased on this host yet\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    out = hil(tmp_path, "rig", "status", str(bad))
    assert out.returncode == 2
    assert f"{bad}:1:1: (top): missing required key 'buses'" in out.stderr
