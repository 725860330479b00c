"""`hil deploy --bundle` on an emulated rig, as a real process, with a hostile prebuilt bundle:
refused with exit 3 and the reason, before anything is unpacked or started (issue #12)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from hil.targets import bundle

HIL = [sys.executable, "-m", "hil", "--no-color"]


def deploy(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HIL_RIG"}
    return subprocess.run([*HIL, "deploy", "rig.yaml", "stack.yaml", "--for", "0.5", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def with_links(good: Path, evil: Path, component: str, links: dict[str, str]) -> Path:
    """``good`` with ``links`` added to ``component``, in the manifest too (so only the rules refuse it)."""
    with tarfile.open(good) as tin:
        members = [(m, tin.extractfile(m).read() if m.isfile() else None) for m in tin.getmembers()]
    doc = json.loads(members[0][1])
    doc["components"][component]["files"].update({p: {"link": to} for p, to in links.items()})
    with tarfile.open(evil, "w:gz") as tout:
        for m, data in members:
            if m.name == bundle.MANIFEST:
                data = json.dumps(doc).encode()
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
        for path, to in links.items():
            info = tarfile.TarInfo(f"{bundle.FILES}/{component}/{path}")
            info.type, info.linkname = tarfile.SYMTYPE, to
            tout.addfile(info)
    return evil


def test_a_bundle_whose_chain_of_links_leaves_is_refused_before_anything_runs(sf, tmp_path):
    marker = tmp_path / "started"
    sf.file("app.sh", f"touch {marker}\necho ready\nexec sleep 600\n")
    stack = sf.stack({"fusion": {"files": ["app.sh"], "argv": ["sh", "app.sh"], "ready": {"console": "^ready$"}}})
    sf.rig()
    good = tmp_path / "good.tar.gz"
    bundle.build_stack(stack, good)
    evil = with_links(good, tmp_path / "evil.tar.gz", "fusion", {"z": "a/b/l/../../..", "a/b/l": "../.."})
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
