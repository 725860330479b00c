"""`hil deploy --bundle` on an emulated rig, as a real process, with a hostile prebuilt bundle:
refused with exit 3 and the reason, before anything is unpacked or started (issue #12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hil.targets import bundle

from . import hostile

HIL = [sys.executable, "-m", "hil", "--no-color"]


def deploy(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HIL_RIG"}
    return subprocess.run([*HIL, "deploy", "rig.yaml", "stack.yaml", "--for", "0.5", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_a_bundle_whose_chain_of_links_leaves_is_refused_before_anything_runs(sf, tmp_path):
    marker = tmp_path / "started"
    sf.file("app.sh", f"touch {marker}\necho ready\nexec sleep 600\n")
    stack = sf.stack({"fusion": {"files": ["app.sh"], "argv": ["sh", "app.sh"], "ready": {"console": "^ready$"}}})
    sf.rig()
    good = tmp_path / "good.tar.gz"
    bundle.build_stack(stack, good)
    evil = hostile.with_links(good, tmp_path / "evil.tar.gz", "fusion", {"z": "a/b/l/../../..", "a/b/l": "../.."})
    r = deploy(sf.root, "--bundle", str(evil), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 3, r.stderr
    assert r.stderr.splitlines()[-1] == (f"error: {evil}: manifest.json: component 'fusion': symbolic link 'z' -> "
                                         "'a/b/l/../../..' leaves the component's folder")
    assert not marker.exists() and not (tmp_path / "run" / "targets").exists()


def test_a_fifo_given_as_the_bundle_is_refused_at_once(sf, tmp_path):
    sf.file("app.sh", "echo ready\n")
    sf.stack({"fusion": {"files": ["app.sh"], "argv": ["sh", "app.sh"]}})
    sf.rig()
    fifo = tmp_path / "b.tar.gz"
    os.mkfifo(fifo)
    r = deploy(sf.root, "--bundle", str(fifo), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 3, r.stderr
    assert r.stderr.splitlines()[-1] == f"error: bundle {fifo} is not a regular file (a FIFO)"
