"""``hil run`` lab operations end to end: retries of error verdicts (flaky), the rig health gate,
two runs on one rig."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path

import pytest

from tests.hilcli import hil as run_hil
from tests.outcomes import explain, pass_or_harness_error

from .cluster import RIGS
from .test_lease import Holder

OPS = Path(__file__).with_name("ops")
PLUGIN = Path(__file__).with_name("plugin")
HIL = [sys.executable, "-c", "from hil.cli import main; main()"]


@pytest.fixture
def env(tmp_path):
    (tmp_path / "flaky").mkdir()
    (tmp_path / "health").write_text("good")
    return {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks"), "HIL_HISTORY": str(tmp_path / "history.sqlite"),
            "HIL_FLAKY_DIR": str(tmp_path / "flaky"), "HIL_HEALTH_FILE": str(tmp_path / "health"),
            "NO_COLOR": "1", "COLUMNS": "200"}


hil = partial(run_hil, timeout=280)


def test_retries_rerun_only_error_verdicts_and_report_flaky(tmp_path, env):
    out = tmp_path / "run"
    r = hil("run", str(OPS / "flaky.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"), "--retries", "2",
            "--out", str(out), env=env)
    assert r.returncode == 1, r.stdout + r.stderr  # too-strict really fails: exit 1, not 3
    assert "hiccup on sim-lab-a: error (" in r.stderr and "retry 1 of 2" in r.stderr
    assert "too-strict" not in r.stderr  # a fail is not retried
    results = json.loads((out / "results.json").read_text())
    hiccup, strict = results["benches"]
    assert (hiccup["verdict"], hiccup["flaky"]) == ("pass", True)
    assert hiccup["error"].startswith("passed on attempt 2 after an infrastructure error; attempt 1: ")
    assert "power glitch" in hiccup["error"] or "exited with code 3" in hiccup["error"]
    assert (strict["verdict"], strict["flaky"]) == ("fail", False)
    assert (out / "hiccup.attempt-1").is_dir() and not (out / "too-strict.attempt-1").exists()
    assert re.search(r"│ hiccup\s+│ pass \(flaky\)", r.stdout), r.stdout
    props = {p.get("name"): p.get("value") for p in ET.parse(out / "junit.xml").getroot()
             .find("testsuite[@name='flaky.hiccup']").iter("property")}
    assert props["flaky"] == "true"
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        assert db.execute("SELECT bench, verdict, flaky FROM benches ORDER BY bench").fetchall() == [
            ("hiccup", "pass", 1), ("too-strict", "fail", 0)]


def test_without_retries_the_error_stands(tmp_path, env):
    r = hil("run", str(OPS / "flaky.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"), "--bench", "hiccup",
            "--out", str(tmp_path / "run"), "--no-history", env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]["verdict"] == "error"


def test_health_gate(tmp_path, env):
    rig = tmp_path / "sim-lab-h.yaml"
    rig.write_text((RIGS / "sim-lab-a.yaml").read_text().replace("name: sim-lab-a", "name: sim-lab-h")
                   + f"\nhealth: {OPS / 'health.yaml'}\n")
    work = ["run", str(OPS / "work.yaml"), "--rig", str(rig)]

    # never checked: the health bench runs first, then the suite
    r = hil(*work, "--out", str(tmp_path / "r1"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "r1" / "health" / "results.json").is_file()

    # the check fails: the rig is unhealthy in the history ...
    (tmp_path / "health").write_text("bad")
    r = hil("rig", "health", str(rig), "--out", str(tmp_path / "h1"), env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("rig sim-lab-h: unhealthy — health check rig-check, run ")
    status = json.loads(hil("rig", "status", str(rig), "--json", env=env).stdout)[0]["health"]
    assert (status["state"], status["run_dir"]) == ("unhealthy", str(tmp_path / "h1"))

    # ... so runs refuse it at once, naming the failed check ...
    r = hil(*work, "--out", str(tmp_path / "r2"), env=env)
    assert r.returncode == 3
    assert r.stderr.startswith("error: rig 'sim-lab-h' is unhealthy: its health check 'rig-check' failed at ")
    assert f"(run {status['run_id']}, {tmp_path / 'h1'})" in r.stderr
    assert "or use --force" in r.stderr and not (tmp_path / "r2" / "results.json").exists()

    # ... unless forced ...
    r = hil(*work, "--force", "--out", str(tmp_path / "r3"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "running anyway (--force)" in r.stderr and (tmp_path / "r3" / "results.json").is_file()

    # ... until a health check passes again; then a recent healthy result skips the check
    (tmp_path / "health").write_text("good")
    assert hil("rig", "health", str(rig), "--out", str(tmp_path / "h2"), env=env).returncode == 0
    r = hil(*work, "--out", str(tmp_path / "r4"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "r4" / "health").exists()
    # ... unless the user trusts no earlier check
    r = hil(*work, "--health-fresh", "0", "--out", str(tmp_path / "r5"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "r5" / "health").is_dir()
    r = hil(*work, "--health-fresh", "soon", "--out", str(tmp_path / "r6"), env=env)
    assert r.returncode == 2 and "--health-fresh" in r.stderr and "'soon'" in r.stderr, r.stderr


def test_second_run_on_a_leased_rig_fails_fast_or_waits(tmp_path, env):
    holder = Holder(tmp_path / "locks", "sim-lab-a")
    pid = holder.held()["pid"]
    run = ["run", str(OPS / "work.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"), "--no-history"]
    r = hil(*run, "--out", str(tmp_path / "busy"), env=env)
    assert r.returncode == 3
    assert r.stderr.startswith(f"error: rig 'sim-lab-a' is leased by pid {pid} (")
    waiting = subprocess.Popen([*HIL, *run, "--wait", "--out", str(tmp_path / "queued")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "is leased by pid" in waiting.stderr.readline()  # it says whom it waits for ...
        holder.release()  # ... and runs once the holder lets go
        stdout, stderr = waiting.communicate(timeout=280)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, stdout + stderr
    assert json.loads((tmp_path / "queued" / "results.json").read_text())["verdict"] == "pass"


def test_several_rigs_side_by_side(tmp_path, env):
    r = hil("run", str(OPS / "work.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"),
            "--rig", str(RIGS / "sim-lab-b.yaml"), "--out", str(tmp_path / "run"), "--no-history", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"pass +idle on sim-lab-a", r.stdout) and re.search(r"pass +idle on sim-lab-b", r.stdout)
    assert re.search(r"│ idle\s+│\s+│\s+pass │\s+pass │", r.stdout), r.stdout
    root = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "0")
    assert [s.get("name") for s in root] == ["sim-lab-a.work.idle", "sim-lab-b.work.idle"]
    assert [s.find("testcase").get("classname") for s in root] == ["work.sim-lab-a", "work.sim-lab-b"]
    page = (tmp_path / "run" / "rigs.html").read_text()
    assert "<a href='sim-lab-a/report.html'>sim-lab-a</a>" in page
    for rig in ("sim-lab-a", "sim-lab-b"):
        assert json.loads((tmp_path / "run" / rig / "results.json").read_text())["rig"] == rig


def test_sigterm_tears_down_and_frees_the_rig(tmp_path, env):
    proc = subprocess.Popen([*HIL, "-v", "run", str(OPS / "long.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"),
                             "--out", str(tmp_path / "run"), "--no-history"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "long: record":
                break
        lease = json.loads((tmp_path / "locks" / "sim-lab-a.lease.json").read_text())
        assert lease["pid"] == proc.pid
        proc.terminate()  # SIGTERM, as a cancelled CI job gets
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert not (tmp_path / "locks" / "sim-lab-a.lease.json").exists()  # released, not left over
    part = tmp_path / "run" / "long" / "targets"
    assert part.is_dir()
    # teardown ran: the component that was running is gone (its leash would also end it, later)
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).endswith("part.py idle")
                and str(tmp_path) in _cwd(p)]


def _cmdline(p: Path) -> str:
    try:
        return p.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _cwd(p: Path) -> str:
    try:
        return os.readlink(p / "cwd")
    except OSError:
        return ""


def test_sigterm_with_several_rigs_tears_each_down(tmp_path, env):
    rigs = ("sim-lab-a", "sim-lab-b")
    proc = subprocess.Popen([*HIL, "-v", "run", str(OPS / "long.yaml"), *[f"--rig={RIGS / r}.yaml" for r in rigs],
                             "--out", str(tmp_path / "run"), "--no-history"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        recording = 0
        for line in proc.stdout:
            recording += line.strip() == "long: record"
            if recording == 2:
                break
        proc.terminate()
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    for rig in rigs:
        assert not (tmp_path / "locks" / f"{rig}.lease.json").exists(), err
        assert (tmp_path / "run" / rig / "long" / "targets").is_dir()
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).endswith("part.py idle")
                and str(tmp_path) in _cwd(p)]


def test_lab_option_mistakes_are_usage_errors(tmp_path, env):
    rig = str(RIGS / "sim-lab-a.yaml")
    r = hil("run", str(OPS / "work.yaml"), "--rig", rig, "--fetch-artifacts", env=env)
    assert (r.returncode, r.stderr) == (2, "error: --fetch-artifacts needs --scheduler: without one the "
                                           "artifacts are here already\n")
    r = hil("run", str(OPS / "work.yaml"), "--rig", rig, "--rig", rig, env=env)
    assert (r.returncode, r.stderr) == (2, f"error: a rig is given twice: {rig}, {rig}\n")
    other = tmp_path / "other" / "sim-lab-a.yaml"  # another rig in a file of the same name
    other.parent.mkdir()
    other.write_text((RIGS / "sim-lab-b.yaml").read_text())
    r = hil("run", str(OPS / "work.yaml"), "--rig", rig, "--rig", str(other), "--out", str(tmp_path / "o"), env=env)
    assert (r.returncode, r.stderr) == (2, f"error: two rigs would share a results folder: {rig} → sim-lab-a/, "
                                           f"{other} → sim-lab-a/; give the rig files different names\n")
    assert not (tmp_path / "o").exists()
    r = hil("run", str(OPS / "work.yaml"), "--rig", "sim-lab-a", env=env)
    assert (r.returncode, r.stderr) == (2, "error: rig file 'sim-lab-a' not found (a rig name needs --scheduler)\n")
    r = hil("run", str(OPS / "work.yaml"), "--rig", rig, "--wait", "soon", env=env)
    assert r.returncode == 2 and "expected a number of seconds, got 'soon'" in r.stderr


def test_a_busy_rig_does_not_cost_the_other_rigs_their_results(tmp_path, env):
    holder = Holder(tmp_path / "locks", "sim-lab-a")
    pid = holder.held()["pid"]
    try:
        r = hil("run", str(OPS / "work.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"),
                "--rig", str(RIGS / "sim-lab-b.yaml"), "--out", str(tmp_path / "run"), "--no-history", env=env)
    finally:
        holder.release()
    assert r.returncode == 3, r.stdout + r.stderr  # infrastructure: one rig could not run
    assert re.search(r"pass +idle on sim-lab-b", r.stdout), r.stdout
    assert f"error: rig sim-lab-a: rig 'sim-lab-a' is leased by pid {pid} (" in r.stderr
    root = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "1")
    assert [s.get("name") for s in root] == ["sim-lab-b.work.idle", "sim-lab-a.rig"]
    error = root.find("testsuite[@name='sim-lab-a.rig']/testcase/error")
    assert error.get("type") == "RigBusyError" and f"leased by pid {pid}" in error.get("message")
    page = (tmp_path / "run" / "rigs.html").read_text()
    assert "Rigs that did not run the suite" in page and f"is leased by pid {pid}" in page
    assert json.loads((tmp_path / "run" / "sim-lab-b" / "results.json").read_text())["verdict"] == "pass"


def test_a_fault_from_the_start_hits_the_first_answer_too(tmp_path, env):
    # every 0x201 answer is delayed 50 ms from the stimulus start on: the smallest latency too
    hil("run", str(PLUGIN / "faults.yaml"), "--rig", str(RIGS / "sim-lab-a.yaml"),
            "--out", str(tmp_path / "run"), "--no-history", env=env)
    bench = json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]
    assert pass_or_harness_error(bench), explain(bench)  # a busy host may leave it unjudged: still measured
    latency = bench["measurements"][0]
    assert latency["name"] == "echo_latency" and latency["value"] >= 50
