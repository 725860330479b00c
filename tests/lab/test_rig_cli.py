"""``hil rig status``: the lease holder as a lab engineer sees it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hil.bench.lease import Lease
from tests.hilcli import hil

from .test_lease import Holder

HIL = [sys.executable, "-c", "from hil.cli import main; main()"]


def state(lock_dir: Path) -> dict[str, str]:
    """Leases (where the test's holders hold them) and history in ``lock_dir``; wide plain output."""
    return {"HIL_LOCK_DIR": str(lock_dir), "HIL_HISTORY": str(lock_dir / "history.sqlite"), "NO_COLOR": "1",
            "COLUMNS": "250"}


def test_status_shows_holder_then_free(tmp_path, root):
    holder = Holder(tmp_path, "sim-minimal")
    rec = holder.held()
    out = hil("rig", "status", str(root / "rigs" / "sim-minimal.yaml"), "other", env=state(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["rig", "lease", "health", "holder"]
    assert lines[1].split()[:5] == ["sim-minimal", "held", "unknown", "pid", str(rec["pid"])]
    assert "running 'lease_holder sim-minimal'" in lines[1] and "CI job nightly#42" in lines[1]
    assert lines[2].split() == ["other", "free", "—"]
    holder.release()
    out = hil("rig", "status", "--json", env=state(tmp_path))
    assert json.loads(out.stdout) == [{"rig": "sim-minimal", "held": False, "stale": False, "holder": None,
                                       "health": None}]


def test_status_of_a_leftover_lease(tmp_path):
    holder = Holder(tmp_path, "sim-a")
    rec = holder.held()
    holder.proc.kill()
    holder.finish()
    out = hil("rig", "status", env=state(tmp_path))
    assert out.stdout.splitlines()[1].split()[:7] == ["sim-a", "free", "—", "left", "over", "from", "pid"]
    assert "reclaimed on next use" in out.stdout
    with Lease("sim-a", directory=tmp_path):
        assert json.loads(hil("rig", "status", "sim-a", "--json", env=state(tmp_path)).stdout)[0]["holder"]["pid"] == os.getpid()
    assert rec["pid"] != os.getpid()


def test_status_with_no_rigs_and_bad_rig_file(tmp_path):
    assert hil("rig", "status", env=state(tmp_path)).stdout == "no rig has been leased on this host yet\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    out = hil("rig", "status", str(bad), env=state(tmp_path))
    assert out.returncode == 2
    assert f"{bad}:1:1: (top): missing required key 'buses'" in out.stderr
