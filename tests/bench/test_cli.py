"""`hil run`, `hil analyze`, `hil history`, `hil compare`: usage and spec errors exit 2 before
anything runs, with the message on stderr."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tests.hilcli import DEFAULT_HISTORY, PLAIN
from tests.hilcli import hil as run_hil

ROOT = Path(__file__).resolve().parents[2]


hil = partial(run_hil, env=PLAIN | DEFAULT_HISTORY)


def test_run_with_a_spec_error_names_file_line_col_and_exits_2(tmp_path):
    suite = (ROOT / "benches" / "aeb-smoke.yaml").read_text().replace("unit: bar, ge: 60", "unit: psi, ge: 60")
    for rel in ("aeb/", "../firmware_stubs/"):
        suite = suite.replace(rel, str((ROOT / "benches" / rel).resolve()) + "/")
    (tmp_path / "bad.yaml").write_text(suite)
    r = hil("run", str(tmp_path / "bad.yaml"), "--rig", "rigs/sim-aeb.yaml", "--out", str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    line = next(i for i, text in enumerate(suite.splitlines(), 1) if "unit: psi" in text)
    assert f"bad.yaml:{line}:" in r.stderr
    assert "benches[0].measurements[5].unit: expected unit 'bar' (the DBC unit of BrakeStatus.MeasuredPressure), got 'psi'" in r.stderr
    assert not (tmp_path / "run").exists()


def test_run_needs_a_rig_and_a_known_bench(tmp_path):
    r = hil("run", "benches/aeb-smoke.yaml")
    assert r.returncode == 2 and "--rig" in r.stderr
    r = hil("run", "benches/aeb-smoke.yaml", "--rig", "rigs/sim-aeb.yaml", "--bench", "nope")
    assert r.returncode == 2
    assert "error: suite 'aeb-smoke' has no bench 'nope'; it has: approach" in r.stderr


def test_run_refuses_a_stack_replacement_the_suite_cannot_take_before_anything_runs(tmp_path):
    run = ("run", "benches/calibration.yaml", "--rig", "rigs/sim-aeb.yaml", "--out", str(tmp_path / "run"))
    r = hil(*run, "--stack", "aeb/stack.yaml=aeb/stack-c.yaml")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("error: --stack aeb/stack.yaml=aeb/stack-c.yaml: suite 'calibration' (benches/calibration.yaml) "
                        f"deploys no stack aeb/stack.yaml ({ROOT / 'benches/aeb/stack.yaml'}); it deploys: "
                        "aeb/brake-stack.yaml, aeb/echo-stack.yaml, aeb/responder-stack.yaml\n")
    r = hil(*run, "--stack", "aeb/brake-stack.yaml=aeb/none.yaml")
    assert (r.returncode, r.stderr) == (2, f"error: --stack aeb/brake-stack.yaml=aeb/none.yaml: spec file "
                                           f"{ROOT / 'benches/aeb/none.yaml'} does not exist\n")
    r = hil(*run, "--stack", "aeb/brake-stack.yaml")
    assert r.returncode == 2 and "expected OLD=NEW (two stack files), got 'aeb/brake-stack.yaml'" in r.stderr
    # the echo stack has no 'brake' for the benches' config: said where the suite sets it
    r = hil(*run, "--stack", "aeb/brake-stack.yaml=aeb/echo-stack.yaml")
    assert r.returncode == 2
    assert ("benches/calibration.yaml:43:14: benches[1].config.brake: stack 'calibration-echo' has no component "
            "'brake'; it has: echo") in r.stderr
    assert not (tmp_path / "run").exists()


def test_analyze_history_compare_usage(tmp_path):
    r = hil("analyze", str(tmp_path / "none.mcap"), "--suite", "benches/aeb-smoke.yaml", "--bench", "x")
    assert r.returncode == 2 and "has no bench 'x'" in r.stderr
    r = hil("history", "--history", str(tmp_path / "h.sqlite"))
    assert (r.returncode, r.stdout.strip()) == (0, f"no runs in {tmp_path / 'h.sqlite'}")
    r = hil("compare", "nope-a", "nope-b", "--history", str(tmp_path / "h.sqlite"))
    assert r.returncode == 2
    assert "'nope-a' is neither a run folder nor a results.json, nor one run id in" in r.stderr
