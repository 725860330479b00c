"""The pytest plugin: a bench written as a pytest test skips without --hil-rig, runs with one, and
puts its measurements into the JUnit report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from hil.bench.lease import Lease
from hil.pytest_plugin import NO_RIG

from .cluster import RIGS

PLUGIN = Path(__file__).with_name("plugin")


def run_pytest(bench_dir: Path, *args: str, test_file: str = "bench_echo.py") -> subprocess.CompletedProcess:
    """pytest on a copy of the example bench folder, as a user would run it (outside our tests/)."""
    if not (bench_dir / test_file).exists():
        shutil.copytree(PLUGIN, bench_dir, dirs_exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pytest", test_file, "-p", "no:cacheprovider", "-rfEs",
         "--junitxml", "junit.xml", *args],
        cwd=bench_dir, capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "1000"})


def properties(junit: Path, test: str) -> dict[str, str]:
    case = ET.parse(junit).getroot().find(f".//testcase[@name='{test}']")
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_skips_with_a_precise_reason_without_a_rig(tmp_path):
    out = run_pytest(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 skipped" in out.stdout
    assert f"bench_echo.py:8: {NO_RIG}" in out.stdout


def harness_broke(out: subprocess.CompletedProcess, test: str) -> bool:
    """True when ``test`` failed because the harness broke its budget (a busy host)."""
    return re.search(rf"FAILED \S*::{test} - hil\.errors\.HarnessError\b", out.stdout) is not None


def test_runs_the_bench_and_reports_measurements_as_junit_properties(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    runs = tmp_path / "runs"
    out = run_pytest(tmp_path / "bench", "--hil-rig", str(RIGS / "sim-lab-a.yaml"), "--hil-runs", str(runs))
    # each test passes, or (a busy host) fails naming the harness, its measurements unjudged
    tests = ("test_echo_latency", "test_echo_with_the_benchs_config_and_faults")
    broke = [t for t in tests if harness_broke(out, t)]
    assert out.returncode == (1 if broke else 0) and out.stdout.count("FAILED ") == len(broke), out.stdout + out.stderr
    for test in tests:
        judged = "unjudged" if test in broke else "pass"
        props = properties(tmp_path / "bench" / "junit.xml", test)
        assert props["hil.echoes"] == "20" and props["hil.echoes.outcome"] == judged, (test, out.stdout)
        assert props["hil.echoes.limits"] == "[20, 20]"
        value, unit = props["hil.echo_latency"].split()
        assert unit == "ms" and props["hil.echo_latency.outcome"] == judged
        # a bench's config and faults apply as under hil run: answers on 0x201, each delayed 50 ms
        assert 0 < float(value) <= 5000 if test == "test_echo_latency" else float(value) >= 50
    assert broke or "warning" not in out.stdout
    assert (runs / "test_echo_latency" / "recording.mcap").stat().st_size > 0
    # deployed as hil run deploys (a RigSession): the stack's bundle built and verified, consoles kept
    assert [p.name for p in (runs / "test_echo_latency").glob("*.tar.gz")] == ["echo-stack-1.0.tar.gz"]
    assert "echo ready" in (runs / "test_echo_latency" / "console" / "echo.log").read_text()


def test_a_broken_harness_budget_fails_the_test_naming_the_harness_never_passes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    test = "test_echo_on_a_harness_held_to_one_nanosecond"
    out = run_pytest(tmp_path / "bench", "--hil-rig", str(RIGS / "sim-lab-a.yaml"), "--hil-runs",
                     str(tmp_path / "runs"), test_file="bench_tight.py")
    assert out.returncode == 1 and "1 failed" in out.stdout, out.stdout + out.stderr
    assert harness_broke(out, test) and "harness over budget" in out.stdout, out.stdout
    props = properties(tmp_path / "bench" / "junit.xml", test)
    assert (props["hil.echoes"], props["hil.echoes.outcome"]) == ("20", "unjudged")


def test_a_leased_rig_is_an_error_naming_the_holder(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    with Lease("sim-lab-a", command="hil run nightly"):
        out = run_pytest(tmp_path / "bench", "--hil-rig", str(RIGS / "sim-lab-a.yaml"))
    assert out.returncode == 1
    assert "2 errors" in out.stdout  # each test, at its rig fixture
    assert "RigBusyError: rig 'sim-lab-a' is leased by pid" in out.stdout
    assert "running 'hil run nightly'" in out.stdout


def test_the_example_aeb_bench_runs_on_the_sim_aeb_rig(tmp_path, root):
    """benches/test_aeb.py on rigs/sim-aeb.yaml. Its latency limits are the demo's business (a
    loaded box may miss them); what must hold: the bench ran to its verdict, every measurement of
    the bench is in the JUnit report, and the AEB never braked with the object far away."""
    env = {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks"), "COLUMNS": "1000"}  # whole summary lines
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(root / "benches" / "test_aeb.py"), "-p", "no:cacheprovider",
         "--hil-rig", str(root / "rigs" / "sim-aeb.yaml"), "--hil-runs", str(tmp_path / "runs"),
         "--junitxml", str(tmp_path / "junit.xml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=280, env=env)
    report = out.stdout + out.stderr
    assert out.returncode in (0, 1), report
    broke = harness_broke(out, "test_approach_brakes_in_time")  # a busy host: not judged
    assert "1 passed" in out.stdout or "AssertionError: measurements out of limits" in out.stdout or broke, report
    props = properties(tmp_path / "junit.xml", "test_approach_brakes_in_time")
    names = {k for k in props if k.startswith("hil.") and k.count(".") == 1}
    assert names == {f"hil.{n}" for n in (
        "radar-to-request-p99", "radar-to-request-missed", "request-to-command-p99", "radar-to-brake-p99",
        "critical-to-50-bar", "peak-pressure", "request-cycle", "replay-p99", "chassis-lost")}
    unjudged = names - {"hil.replay-p99"} if broke else set()  # the replay's own figure is judged still
    assert all(props[f"{n}.outcome"] == "unjudged" for n in unjudged), props
    assert all(props[f"{n}.outcome"] in ("pass", "marginal", "fail") for n in names - unjudged), props
    assert (tmp_path / "runs" / "test_approach_brakes_in_time" / "recording.mcap").is_file()


def test_the_example_aeb_bench_skips_without_a_rig(tmp_path, root):
    out = subprocess.run([sys.executable, "-m", "pytest", str(root / "benches" / "test_aeb.py"),
                          "-p", "no:cacheprovider", "-rs"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout and NO_RIG in out.stdout


SLOW = '''
import time
from pathlib import Path


def test_one(hil_rig):
    Path("one-started").touch()
    time.sleep(120)


def test_two(hil_rig):
    Path("two-ran").touch()
'''


def test_sigterm_ends_the_session_and_frees_the_rig(tmp_path, monkeypatch):
    """A cancelled CI job: no further test runs on the rig (SystemExit used to fail one test and
    let the others carry on), the rig is torn down and its lease freed."""
    import signal
    import time

    from hil.bench.lease import status

    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "test_slow.py").write_text(SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "test_slow.py", "-p", "no:cacheprovider",
                             "--hil-rig", str(RIGS / "sim-lab-a.yaml")], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "one-started").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "two-ran").exists(), out
    assert proc.returncode == 2, out  # pytest's "interrupted"
    assert "stopped by SIGTERM" in out  # pytest names the stop (a KeyboardInterrupt)
    assert not status("sim-lab-a", tmp_path / "locks").held
