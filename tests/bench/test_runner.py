"""The bench and suite runners on a small emulated rig: a real HPC process echoing CAN frames,
real simbus broker, injector, recorder; and the ways a bench ends in ``error``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hil.bench import BenchOptions, SuiteOptions, run_bench, run_suite
from hil.results import BenchResult
from hil.errors import SpecError, UsageError
from hil.recording import load
from tests.hilcli import PLAIN, hil
from tests.outcomes import explain, pass_or_harness_error, require_harness

ECHO = textwrap.dedent('''
    import can
    from hil.buses import bus_from_env
    bus = bus_from_env("can")
    print("echo: ready", flush=True)
    while True:
        msg = bus.recv(1.0)
        if msg is not None and msg.arbitration_id == 0x10:
            bus.send(can.Message(arbitration_id=0x11, data=msg.data, is_extended_id=False))
''')


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "echo.py").write_text(ECHO)
    (tmp_path / "rig.yaml").write_text(textwrap.dedent('''
        name: tiny
        buses:
          can: {kind: can, emulated: true}
        targets:
          hpc: {kind: hpc, reach: {via: emulated}, buses: [can]}
    '''))
    (tmp_path / "stack.yaml").write_text(textwrap.dedent('''
        name: tiny
        version: "1"
        components:
          echo:
            kind: process
            target: hpc
            files: [echo.py]
            argv: ["{python}", echo.py]
            ready: {console: "echo: ready", timeout: 30s}
    '''))
    (tmp_path / "broken-stack.yaml").write_text(textwrap.dedent('''
        name: broken
        version: "1"
        components:
          echo: {kind: process, target: hpc, argv: ["{python}", missing.py], ready: {console: ready}}  # dies at start
    '''))
    (tmp_path / "stim.log").write_text("".join(f"({1 + i * 0.01:.6f}) can 010#{i:02X}00 R\n" for i in range(50)))
    return tmp_path


def suite(tmp: Path, benches: str) -> Path:
    path = tmp / "suite.yaml"
    path.write_text("name: tiny-suite\ndefaults: {stack: stack.yaml, settle: 200ms}\nbenches:\n" + textwrap.dedent(benches))
    return path


ECHO_BENCH = '''
- name: echo
  stimulus: {sources: [{file: stim.log}]}
  probes:
    - {name: echo, pair: counter, from: {bus: can, id: 0x10, byte: 0}, to: {bus: can, id: 0x11, byte: 0}, window: 500ms}
  measurements:
    - {name: echo-missed, probe: echo, stat: missed, le: 0}
    - {name: echo-p50, probe: echo, stat: p50, unit: ms, le: 250}
    - {name: echo-frames, frames: 0x11, bus: can, ge: 50}
'''


def test_a_bench_runs_end_to_end_and_leaves_its_folder(files):
    events = []
    result = run_suite(files / "rig.yaml", suite(files, ECHO_BENCH),
                       SuiteOptions(repeat=2, out=files / "run", record_history=False, on_event=events.append))
    first, again = result.benches
    assert all(pass_or_harness_error(b.to_json()) for b in result.benches), [explain(b.to_json()) for b in result.benches]
    assert [e.phase for e in events if e.repeat == 0] == ["bring-up", "deploy", "start", "ready", "record",
                                                          "inject", "settle", "stop", "analyse", "done"]
    assert [(b.key, b.dir) for b in result.benches] == [("echo", "echo"), ("echo#1", "echo#1")]
    assert {m.name: m.value for m in first.measurements}["echo-frames"] == 50
    assert first.probes["echo"]["stats"]["count"] == 50
    assert first.replay["frames_sent"] == 50
    rec = load(files / "run" / first.files["recording"], strict=True)
    assert {e.kind for e in rec.events} >= {"replay", "bus-stats", "host-load"}
    assert "echo: ready" in (files / "run" / first.files["consoles"]["echo"]).read_text()
    assert all((files / "run" / p).is_file() for p in first.files["plots"].values())
    assert (files / "run" / "echo#1" / "recording.mcap").is_file()


def test_run_bench_is_the_unit_a_worker_runs(files):
    """The cluster dispatcher's view: one call, an absolute bench folder, a picklable result."""
    import pickle

    result = run_bench(files / "rig.yaml", suite(files, """
    - name: broken
      stack: broken-stack.yaml
    """), "broken", files / "run", BenchOptions(repeat=3))
    assert Path(result.dir) == files / "run" / "broken#3"
    assert pickle.loads(pickle.dumps(result)).to_json() == result.to_json()


def test_deploy_failure_is_an_error_and_fail_fast_skips_the_rest(files):
    path = suite(files, '''
    - name: broken
      stack: broken-stack.yaml
    - name: never
      stack: broken-stack.yaml
    ''')
    result = run_suite(files / "rig.yaml", path, SuiteOptions(fail_fast=True, out=files / "run",
                                                              history=files / "h.sqlite"))
    broken, never = result.benches
    assert (broken.verdict, broken.phase, broken.error_kind) == ("error", "ready", "DeployError")
    assert "missing.py" in broken.error
    assert (never.verdict, never.error) == ("skipped", "--fail-fast: broken did not pass")
    assert (result.verdict, result.exit_code) == ("error", 3)
    data = json.loads((files / "run" / "results.json").read_text())
    assert [b["verdict"] for b in data["benches"]] == ["error", "skipped"]
    assert (files / "run" / "junit.xml").is_file() and (files / "run" / "report.html").is_file()


def test_problems_are_found_before_anything_runs(files):
    dbc = Path(__file__).parents[2] / "firmware_stubs" / "brake_ecu" / "brake.dbc"
    bad = suite(files, f'''
    - name: b
      dbc: [{dbc}, nowhere.dbc]
      measurements:
        - {{name: p, signal: BrakeStatus.Pressure, bus: can, le: 1}}
    ''')
    with pytest.raises(SpecError, match=r"suite.yaml:6:\d+: benches\[0\]\.dbc\[1\]: DBC file .*nowhere.dbc does not exist"):
        run_suite(files / "rig.yaml", bad, SuiteOptions(out=files / "run", record_history=False))
    bad.write_text(bad.read_text().replace(", nowhere.dbc", ""))
    with pytest.raises(SpecError, match=r"suite.yaml:8:\d+: benches\[0\]\.measurements\[0\]\.signal: message "
                                        r"'BrakeStatus' has no signal 'Pressure'"):
        run_suite(files / "rig.yaml", bad, SuiteOptions(out=files / "run", record_history=False))
    assert not (files / "run").exists()
    with pytest.raises(UsageError, match="suite 'tiny-suite' has no bench 'nope'; it has: b"):
        run_suite(files / "rig.yaml", bad, SuiteOptions(benches=["nope"], record_history=False))


def test_a_corrupt_stimulus_is_an_error_before_the_rig_is_brought_up(files):
    (files / "stim.log").write_text("(1.000000) can 010#0100 R\n(1.010000) can 010#02")  # cut off
    events = []
    result = run_bench(files / "rig.yaml", suite(files, ECHO_BENCH), "echo", files / "run",
                       BenchOptions(on_event=events.append))
    assert (result.verdict, result.error_kind, result.phase) == ("error", "StimulusError", "plan")
    assert "stim.log" in result.error and "line 2" in result.error, result.error
    assert [e.phase for e in events] == ["done"]  # no bring-up, deploy or recording first
    assert not (files / "run" / "echo" / "recording.mcap").exists()


def test_a_bench_longer_than_its_timeout_is_an_error(files):
    path = suite(files, '''
    - name: slow
      settle: 0s
      timeout: 1ms
    ''')
    result = run_bench(files / "rig.yaml", path, "slow", files / "run")
    assert (result.verdict, result.error_kind, result.phase) == ("error", "TargetTimeoutError", "deploy")
    assert result.error == "bench 'slow' ran longer than its timeout of 1ms (in phase deploy)"


def test_a_replay_running_past_the_bench_timeout_is_stopped(files):
    """The timeout bounds the replay too: a stimulus longer than the bench may run is cut off, the
    bench ends in ``error`` and its recording keeps what was sent so far."""
    (files / "long.log").write_text("".join(f"({1 + i * 1.0:.6f}) can 010#{i % 256:02X}00 R\n" for i in range(120)))
    path = suite(files, '''
    - name: long
      timeout: 15s
      stimulus: {sources: [{file: long.log}]}
    ''')
    result = run_bench(files / "rig.yaml", path, "long", files / "run")
    assert (result.verdict, result.error_kind, result.phase) == ("error", "TargetTimeoutError", "inject")
    assert result.error == "bench 'long' ran longer than its timeout of 15s (in phase inject): the replay was stopped"
    sent = load(Path(result.dir) / "recording.mcap").frames("can").with_id(0x10)
    assert 0 < len(sent) < 120


def test_a_stop_before_a_bench_started_is_recorded_and_the_reports_are_written(files):
    """A stop that lands between benches (say, while the next one's files are read) is not lost: the
    bench it cut short is an ``error`` in phase ``plan`` naming the signal, and the reports exist."""
    import signal

    from hil.lifecycle.signals import Stopped

    def stopped_while_planning(*args, **kwargs):
        raise Stopped(signal.SIGTERM)

    with pytest.raises(Stopped):
        run_suite(files / "rig.yaml", suite(files, ECHO_BENCH),
                  SuiteOptions(out=files / "run", record_history=False, run_bench=stopped_while_planning))
    bench = json.loads((files / "run" / "results.json").read_text())["benches"][0]
    assert (bench["name"], bench["verdict"], bench["phase"]) == ("echo", "error", "plan")
    assert bench["error"] == "stopped by SIGTERM before the bench started"
    assert (files / "run" / "report.html").is_file()


def test_a_stop_landing_as_the_reports_begin_still_leaves_them_written(files, monkeypatch):
    """A stop that lands after the last bench but before the reports' shield is up (here: in the
    clock read that times the run) still leaves results.json with every bench judged."""
    import signal

    import hil.bench.suite
    from hil.lifecycle.signals import Stopped

    reads = iter([0, Stopped(signal.SIGTERM)])

    def clock() -> int:  # the run's start; then the stop lands, once, as a signal's handler raises it
        read = next(reads, 0)
        if isinstance(read, Stopped):
            raise read
        return read

    monkeypatch.setattr(hil.bench.suite, "now_ns", clock)
    judged = BenchResult("echo", "pass", 0, "tiny")
    with pytest.raises(Stopped):
        run_suite(files / "rig.yaml", suite(files, ECHO_BENCH),
                  SuiteOptions(out=files / "run", record_history=False, run_bench=lambda *a, **k: judged))
    bench = json.loads((files / "run" / "results.json").read_text())["benches"][0]
    assert (bench["name"], bench["verdict"]) == ("echo", "pass")


def test_phases_are_in_the_recording(files):
    """A recording says where the bench was, also one cut short: its phases are events."""
    result = run_suite(files / "rig.yaml", suite(files, ECHO_BENCH), SuiteOptions(out=files / "run",
                                                                                  record_history=False))
    rec = load(files / "run" / result.benches[0].files["recording"], strict=True)
    assert [e.data["phase"] for e in rec.events if e.kind == "phase"] == ["inject", "settle", "stop"]


def test_a_harness_budget_no_emulation_can_keep_makes_a_real_run_an_error_not_a_fail(files):
    """1 ns of harness error allowed: every frame breaks it, so the bench is an error naming the
    harness, its measurements (which would pass) unjudged, and the run exits 3."""
    path = suite(files, ECHO_BENCH.replace("- name: echo\n", "- name: echo\n  harness: {p99: 1ns, max: 1ns}\n"))
    result = run_suite(files / "rig.yaml", path, SuiteOptions(out=files / "run", record_history=False))
    bench = result.benches[0]
    require_harness([bench.to_json()])
    assert (bench.verdict, bench.error_kind, result.exit_code) == ("error", "HarnessError", 3)
    assert "harness over budget: delivery error p99" in bench.error and "budget 1 ns" in bench.error
    assert {m.outcome for m in bench.measurements} == {"unjudged"}
    assert bench.harness["buses"]["can"]["delivery"]["count"] > 0


def test_a_bench_with_power_cycle_cycles_its_targets_switch_before_deploying(files):
    """``power_cycle`` (a nightly's cold boot): the switch feeding the bench's target goes off and on
    before the deploy, the result and the recording list the target; a bench without it leaves the
    switch alone; on a rig where no switch feeds the target, the result warns instead of pretending."""
    import sys

    log = files / "power.log"
    step = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    rig = (files / "rig.yaml").read_text().replace("buses: [can]", "buses: [can], power: pdu")
    argv = {s: json.dumps([sys.executable, "-c", step, str(log), s]) for s in ("on", "off")}
    (files / "powered.yaml").write_text(f"{rig}power:\n  pdu: {{kind: command, on: {argv['on']}, off: {argv['off']}, "
                                        "off_time: 0s}\n")
    path = suite(files, '''
    - {name: cold, power_cycle: true, duration: 100ms}
    - {name: warm, duration: 100ms}
    ''')
    cold, warm = run_suite(files / "powered.yaml", path, SuiteOptions(out=files / "run", record_history=False)).benches
    assert (cold.verdict, warm.verdict) == ("pass", "pass"), (explain(cold.to_json()), explain(warm.to_json()))
    assert log.read_text() == "off\non\n"  # once: the cold bench's, before its deploy
    assert (cold.power_cycled, warm.power_cycled, cold.warnings) == (["hpc"], [], [])
    recording = load(files / "run" / cold.files["recording"], strict=True)
    assert json.loads(recording.metadata["power_cycled"]) == ["hpc"]

    r = hil("run", str(path), "--rig", str(files / "rig.yaml"), "--bench", "cold", "--out", str(files / "run2"),
            "--no-history", env=PLAIN, timeout=300)
    unpowered = json.loads((files / "run2" / "results.json").read_text())["benches"][0]
    warning = "power_cycle: no power switch feeds target 'hpc'; it was not power-cycled"
    assert (unpowered["power_cycled"], unpowered["warnings"]) == ([], [warning]), r.stdout + r.stderr
    assert f"warning: cold: {warning}" in r.stderr.splitlines()
