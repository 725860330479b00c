"""`hil replay`, `hil record`, `hil export` and `hil doctor`, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from hil.recording import load
from tests.hilcli import hil

HIL = [sys.executable, "-m", "hil"]
RIG = """name: sim-cli
buses:
  chassis: {kind: can, emulated: true, bitrate: 1000000}
  console: {kind: serial, emulated: true}
"""


@pytest.fixture
def rig(tmp_path) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(RIG)
    return path


@pytest.fixture
def log(tmp_path) -> Path:
    path = tmp_path / "drive.log"
    path.write_text("".join(f"({i / 1000:.6f}) can0 {0x100 + i % 3:03X}#{i % 256:02X}\n" for i in range(300)))
    return path


def test_replay_reports_json_records_and_exports(tmp_path, rig, log):
    r = hil("replay", str(log), "--rig", str(rig), "--map", "can0=chassis", "--record", "run.mcap",
            "--budget", "span_error=0.5", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["frames_sent"] == 300 and report["frames_early"] == 0 and report["budget_problems"] == []
    assert set(report["lateness_ns"]) == {"p50", "p90", "p99", "p99.9", "max", "min", "mean", "std"}  # every stat a bench may judge
    frames = load(tmp_path / "run.mcap").frames("chassis")
    assert len(frames) == 300 and all(frames.flags & 0x40)
    r = hil("export", "run.mcap", "--to", "blf", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "wrote run.blf (chassis → channel 1)\n"), r.stderr
    assert [m.arbitration_id for m in can.BLFReader(tmp_path / "run.blf")] == [0x100 + i % 3 for i in range(300)]


def test_replay_refuses_long_silence_and_says_what_it_left_out(tmp_path, rig):
    path = tmp_path / "gap.log"
    path.write_text("(1.000000) can0 101#01\ngarbage\n(71.000000) can0 102#02\n(71.001000) can0 103#03\n")
    r = hil("replay", str(path), "--rig", str(rig), "--map", "can0=chassis", "--lenient", cwd=tmp_path)
    assert r.returncode == 3 and r.stderr.startswith(
        "error: stimulus source 1 (gap.log line 3): 70 s of silence before this frame (70 s in the log, at rate 1); "
        "the longest silence allowed is max_gap (60 s)"), r.stderr
    r = hil("replay", str(path), "--rig", str(rig), "--map", "can0=chassis", "--lenient", "--skip-gaps-over", "10ms",
            cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("left out: 1 lines not understood (lenient) in gap.log\n"), r.stderr
    r = hil("replay", str(path), "--rig", str(rig), "--map", "can0=chassis", "--lenient", "--max-gap", "2min",
            "--skip-gaps-over", "10ms", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["left_out"] == {"lines not understood (lenient) in gap.log": 1}


def test_replay_over_budget_exits_1_and_says_which_limit(tmp_path, rig, log):
    r = hil("replay", str(log), "--rig", str(rig), "--map", "can0=chassis", "--rate", "1000",
            "--budget", "max=0ns", "--budget", "span_error=0", cwd=tmp_path)
    # at 1000× the 300 frames overrun the 1 Mbit/s wire, so lateness and span error are certain
    assert r.returncode == 1, r.stderr
    assert "error: replay lateness max" in r.stderr and "exceeds the budget 0.0 µs" in r.stderr
    assert "error: replay span error" in r.stderr
    assert "frames early" in r.stdout


def test_replay_usage_and_stimulus_errors(tmp_path, rig, log):
    r = hil("replay", str(log), "--rig", str(rig), "--map", "can9=chassis", cwd=tmp_path)
    assert r.returncode == 3 and "map names log channel(s) 'can9', but the file has: 'can0'" in r.stderr
    r = hil("replay", str(log), "--rig", str(rig), "--map", "can0", cwd=tmp_path)
    assert r.returncode == 2 and "expected LOG_CH=BUS, got 'can0'" in r.stderr
    r = hil("replay", str(log), "--rig", str(rig), "--budget", "p99=fast", cwd=tmp_path)
    assert r.returncode == 2 and "invalid --budget" in r.stderr
    r = hil("replay", str(log), "--rig", str(rig), "--budget", "p95=1ms", cwd=tmp_path)  # refused before playing
    assert r.returncode == 2 and "invalid --budget: unknown statistic 'p95'; expected one of p50, p90" in r.stderr
    r = hil("replay", str(log), "--rig", str(rig), "--include-port", "2368", cwd=tmp_path)
    assert r.returncode == 2 and "--include-port: 'include_ports' filters a packet capture's" in r.stderr


def test_record_captures_what_another_program_sends(tmp_path, rig):
    proc = subprocess.Popen([*HIL, "-v", "record", "--rig", str(rig), "--duration", "4s", "-o", "rec.mcap"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("HIL_BUSES="), line
        cfg = json.loads(line.split("=", 1)[1])["chassis"]
        with can.Bus(**cfg) as bus:
            for i in range(50):
                bus.send(can.Message(arbitration_id=0x7A0, data=[i], is_extended_id=False))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "recorded rec.mcap: /can/chassis 50" in out
    rec = load(tmp_path / "rec.mcap", strict=True)
    assert [int(r[0]) for r in rec.frames("chassis").data] == list(range(50))
    assert rec.metadata["rig"] == "sim-cli" and "simbus" in json.loads(rec.metadata["bus_clocks"])["chassis"]


def test_doctor_json_has_the_findings(tmp_path):
    r = hil("doctor", "--sample", "200ms", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    assert f["timer_slack_ns"]["lowered_to"] in (1, None)
    assert f["sleep_and_spin_lateness_ns"]["samples"] == 100 and f["sleep_lateness_ns"]["max"] >= 0
    assert isinstance(f["advice"], list) and f["scheduler"].startswith("SCHED_")


def test_ctrl_c_stops_the_replay_cleanly_and_keeps_the_recording(tmp_path, rig):
    long = tmp_path / "long.log"
    long.write_text("".join(f"({i / 1000:.6f}) can0 100#{i % 256:02X}\n" for i in range(60_000)))
    proc = subprocess.Popen([*HIL, "replay", str(long), "--rig", str(rig), "--map", "can0=chassis", "--record",
                             "run.mcap"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # Ctrl-C goes to the whole process group
    try:
        while not (tmp_path / "run.mcap").exists() or (tmp_path / "run.mcap").stat().st_size < 4_000:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)  # frames are being recorded: the replay runs
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().endswith("error: interrupted") and "Traceback" not in err
    rec = load(tmp_path / "run.mcap", strict=True)  # finished properly, with its summary
    assert 0 < len(rec.frames("chassis")) < 60_000
