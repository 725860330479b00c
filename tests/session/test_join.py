"""`hil record` and `hil replay` join a rig that `hil deploy` holds: real processes end to end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.recording import load

HIL = [sys.executable, "-m", "hil"]
PLUGIN = Path(__file__).resolve().parent.parent / "lab" / "plugin"  # the echo component and its stack
RIG = """name: sim-join
buses:
  chassis: {kind: can, emulated: true, bitrate: 500000}
targets:
  hpc: {kind: hpc, reach: {via: emulated}, buses: [chassis]}
"""
FRAMES = 40


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "HIL_RIG"}, "NO_COLOR": "1", "COLUMNS": "200"}


def hil(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*HIL, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())


def wait_for_line(proc: subprocess.Popen, text: str) -> str:
    for line in proc.stdout:
        if text in line:
            return line
    raise AssertionError(f"{proc.args[3]} ended without printing {text!r}: {proc.communicate(timeout=60)}")


@pytest.fixture
def lab(tmp_path) -> Path:
    for name in ("echo.py", "stack.yaml"):
        shutil.copy(PLUGIN / name, tmp_path / name)
    (tmp_path / "rig.yaml").write_text(RIG)
    (tmp_path / "drive.log").write_text("".join(f"({i / 50:.6f}) can0 100#{i:02X}\n" for i in range(FRAMES)))
    return tmp_path


def descriptor() -> Path:
    return Path(os.environ["HIL_LOCK_DIR"]) / "sim-join.session.json"


def test_record_and_replay_join_the_rig_deploy_holds(lab):
    deploy = hil("deploy", "rig.yaml", "stack.yaml", "--run-dir", "run", cwd=lab)
    record = None
    try:
        wait_for_line(deploy, "is up")
        held = json.loads(descriptor().read_text())
        assert held["pid"] == deploy.pid and held["rig"] == "sim-join"
        assert oct(descriptor().stat().st_mode & 0o777) == "0o600"
        record = hil("record", "--rig", "rig.yaml", "--duration", "600s", "-o", "rec.mcap", cwd=lab)
        assert "joined the session holding rig 'sim-join'" in wait_for_line(record, "joined")
        # the lease is deploy's: replay joins instead of waiting for it, and drives the deployed echo
        replay = subprocess.run([*HIL, "replay", "drive.log", "--rig", "rig.yaml", "--map", "can0=chassis", "--json"],
                                cwd=lab, capture_output=True, text=True, env=env(), timeout=300)
        assert replay.returncode == 0, replay.stderr
        report = json.loads(replay.stdout)
        assert report["frames_sent"] == FRAMES and report["joined"].startswith("the session holding rig 'sim-join'")
        deadline = time.monotonic() + 60
        while len(load_cut(lab / "rec.mcap", 0x200)) < FRAMES and time.monotonic() < deadline:
            time.sleep(0.25)
        record.send_signal(signal.SIGINT)
        out, err = record.communicate(timeout=120)
        assert record.returncode == 0 and "stopped early (Ctrl-C); the recording is complete up to now" in err, err
        assert deploy.poll() is None  # the joiners stopped nothing of the holder's
    finally:
        for proc in (record, deploy):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        out, err = deploy.communicate(timeout=120)
        if record is not None:
            record.wait(timeout=120)
    assert deploy.returncode == 0, err
    assert not descriptor().exists()  # withdrawn at teardown
    rec = load(lab / "rec.mcap", strict=True)
    frames = rec.frames("chassis")
    ids = [int(i) for i in frames.id]
    assert ids.count(0x100) == FRAMES and ids.count(0x200) == FRAMES  # the stimulus and the stack's answers
    assert int(rec.metadata["epoch_offset_ns"]) == held["epoch_offset_ns"]  # on the holder's run clock


def test_a_joined_recording_ends_complete_when_the_holder_goes(lab):
    deploy = hil("deploy", "rig.yaml", "stack.yaml", "--run-dir", "run", cwd=lab)
    record = None
    try:
        wait_for_line(deploy, "is up")
        record = hil("record", "--rig", "rig.yaml", "--duration", "600s", "-o", "rec.mcap", cwd=lab)
        wait_for_line(record, "joined")
        deploy.send_signal(signal.SIGTERM)
        deploy.communicate(timeout=120)
        out, err = record.communicate(timeout=120)
    finally:
        for proc in (record, deploy):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert deploy.returncode == 0
    assert record.returncode == 0, err
    assert "the recording is complete up to then" in err  # the holder (or its broker) went, named
    assert "recorded rec.mcap" in out
    load(lab / "rec.mcap", strict=True)  # a valid recording


def load_cut(path: Path, can_id: int) -> list[int]:
    """The frames with ``can_id`` in the recording so far (a live MCAP ends with a footer after each commit)."""
    try:
        return [i for i in load(path).frames("chassis").id if i == can_id]
    except Exception:  # not yet written
        return []
