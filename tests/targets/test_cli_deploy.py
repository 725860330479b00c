"""`hil stack build` and `hil deploy` run as real processes: output, exit codes, Ctrl-C teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from hil.targets.bundle import file_sha256
from tests.hilcli import PLAIN, hil_env
from tests.hilcli import hil as run_hil

from .conftest import group_members, wait_groups_gone

HIL = [sys.executable, "-m", "hil"]
UP = 'cut -d" " -f5 /proc/$$/stat > "$PIDFILE"; echo booting; echo ready; exec sleep 600'  # pgid to PIDFILE


hil = partial(run_hil, env=PLAIN, timeout=300)


@pytest.fixture
def files(sf, tmp_path):
    sf.file("app.sh", "echo hi\n")
    sf.stack({"fusion": {"files": ["app.sh"], "argv": ["sh", "-c", UP],
                         "env": {"PIDFILE": str(tmp_path / "fusion.pid")}, "ready": {"console": "^ready$"}}})
    sf.rig()
    return sf


def test_stack_build_writes_the_versioned_bundle(files, tmp_path):
    r = hil("stack", "build", "stack.yaml", "-o", str(tmp_path), cwd=files.root)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "demo-1.0.tar.gz"
    lines = r.stdout.splitlines()
    assert lines[-1] == f"built {out} — demo 1.0, sha256 {file_sha256(out)}"
    assert lines[1].split() == ["fusion", "hpc", "process", "1", "8"]
    assert r.stderr == ""


def test_stack_build_reports_a_missing_file(sf, tmp_path):
    sf.stack({"fusion": {"files": ["gone.bin"], "argv": ["true"]}})
    r = hil("stack", "build", "stack.yaml", cwd=sf.root)
    assert r.returncode == 3
    assert r.stderr.startswith(f"error: component 'fusion': file {sf.root / 'gone.bin'} does not exist")


def test_deploy_for_a_while_then_tears_down(files, tmp_path):
    r = hil("deploy", "rig.yaml", "stack.yaml", "--run-dir", str(tmp_path / "run"), "--for", "0.5", cwd=files.root)
    assert r.returncode == 0, r.stderr
    steps = [l.split(" — ")[0] for l in r.stdout.splitlines()]
    assert steps == ["hpc: deploying", "hpc: deployed", "hpc: starting", "hpc: started", "hpc: waiting",
                     "hpc: ready", f"demo 1.0 is up on testrig; stopping in 0.5s · logs in {tmp_path / 'run/consoles'}",
                     "hpc: stopping", "hpc: stopped", f"torn down; logs in {tmp_path / 'run/consoles'}"]
    assert "hpc: waiting — fusion: console line matching '^ready$'" in r.stdout
    pgid = int((tmp_path / "fusion.pid").read_text())
    assert pgid != os.getpgid(0)
    log = (tmp_path / "run/consoles/fusion.log").read_text().splitlines()
    assert [l.split(" ", 2)[1:] for l in log] == [["stdout", "booting"], ["stdout", "ready"]]
    assert wait_groups_gone([pgid]) == {}


def _start(files, tmp_path) -> subprocess.Popen:
    return subprocess.Popen([*HIL, "deploy", "rig.yaml", "stack.yaml", "--run-dir", str(tmp_path / "run")],
                            cwd=files.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hil_env(PLAIN))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_deploy_stays_up_until_interrupted_then_tears_down(files, tmp_path, sig):
    proc = _start(files, tmp_path)
    try:
        for line in proc.stdout:
            if "is up on testrig" in line:
                break
        pgid = int((tmp_path / "fusion.pid").read_text())
        assert group_members(pgid)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines()[-3:-1] == ["hpc: stopping", "hpc: stopped"]
    assert wait_groups_gone([pgid]) == {}


def test_interrupt_during_bring_up_is_130_and_still_tears_down(files, tmp_path):
    stack = files.root / "stack.yaml"
    stack.write_text(stack.read_text().replace("^ready$", "^never$"))
    proc = _start(files, tmp_path)
    try:
        for line in proc.stdout:
            if line.startswith("hpc: waiting"):
                break
        pgid = _read_pgid(tmp_path / "fusion.pid")
        assert group_members(pgid)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert err.strip() == "error: interrupted"
    assert "hpc: stopped" in out
    assert wait_groups_gone([pgid]) == {}


def _read_pgid(path: Path) -> int:
    """The pgid a component wrote once it started (bounded wait, not a timing assertion)."""
    end = time.monotonic() + 60
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < end:
        time.sleep(0.05)
    return int(path.read_text())


def test_crash_is_exit_3_with_the_console_tail(sf, tmp_path):
    sf.stack({"fusion": {"argv": ["sh", "-c", "echo 'no map at /maps/a.bin'; exit 3"], "ready": {"console": "^ready$"}}})
    sf.rig()
    r = hil("deploy", "rig.yaml", "stack.yaml", "--run-dir", str(tmp_path / "run"), cwd=sf.root)
    assert r.returncode == 3
    assert r.stderr == ("error: target 'hpc': component 'fusion' exited with code 3 during start-up\n"
                        "last 1 console line(s) of fusion:\n  | no map at /maps/a.bin\n")
    assert "hpc: failed — target 'hpc': component 'fusion' exited with code 3 during start-up" in r.stdout


def test_a_bundle_of_another_version_is_refused(files, tmp_path):
    assert hil("stack", "build", "stack.yaml", "-o", str(tmp_path), cwd=files.root).returncode == 0
    stack = files.root / "stack.yaml"
    stack.write_text(stack.read_text().replace("version: '1.0'", "version: '1.1'"))
    r = hil("deploy", "rig.yaml", "stack.yaml", "--bundle", str(tmp_path / "demo-1.0.tar.gz"),
            "--run-dir", str(tmp_path / "run"), cwd=files.root)
    assert r.returncode == 3
    assert r.stderr == "error: bundle is demo 1.0, but the stack is demo 1.1\n"


def test_a_stack_that_does_not_fit_the_rig_is_a_spec_error(sf, tmp_path):
    sf.stack({"fusion": {"argv": ["true"], "target": "orin"}})
    sf.rig()
    r = hil("deploy", "rig.yaml", "stack.yaml", "--run-dir", str(tmp_path / "run"), cwd=sf.root)
    assert r.returncode == 2
    assert "components.fusion.target: unknown target 'orin'; rig 'testrig' has: hpc" in r.stderr


def test_default_run_folder_is_under_runs(files):
    r = hil("deploy", "rig.yaml", "stack.yaml", "--for", "0", cwd=files.root)
    assert r.returncode == 0, r.stderr
    (folder,) = (files.root / "runs").iterdir()
    assert folder.name.startswith("deploy-demo-")
    assert (folder / "consoles" / "fusion.log").exists()
    assert r.stdout.splitlines()[-1] == f"torn down; logs in runs/{folder.name}/consoles"


def test_the_demo_rig_deploys_into_a_relative_run_folder(tmp_path):
    """Relative run folders (the default `runs/...` is one) used to break every emulated MCU: its
    process was started in its own folder and given a path relative to ours."""
    root = Path(__file__).resolve().parents[2]
    r = hil("deploy", str(root / "rigs" / "sim-aeb.yaml"), str(root / "benches" / "aeb" / "stack.yaml"),
            "--run-dir", "run", "--for", "0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "brake-mcu: ready" in r.stdout
    assert (tmp_path / "run" / "targets" / "brake-mcu" / "flash.bin").is_file()
