"""Dispatch over a real Dask scheduler and two ``hil worker`` processes on loopback, each owning one
emulated rig."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hil.bench import BenchOptions, SuiteOptions, run_suite
from hil.cluster.dispatch import Lab
from hil.errors import ClusterError

from .cluster import RIGS, HilWorker, Scheduler

MEET = Path(__file__).with_name("meet") / "suite.yaml"


@pytest.fixture(scope="module")
def meet_dir(tmp_path_factory):
    """Where the meet component of tests/lab/meet leaves its markers."""
    return tmp_path_factory.mktemp("meet")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, meet_dir):
    """Scheduler + worker A (rig sim-lab-a) + worker B (rig sim-lab-b); yields (Lab, A, B)."""
    sched = Scheduler(tmp_path_factory.mktemp("scheduler"))
    workers = []
    try:
        for name in ("a", "b"):
            workers.append(HilWorker(sched.address, tmp_path_factory.mktemp(f"host-{name}"),
                                     str(RIGS / f"sim-lab-{name}.yaml"),
                                     env={"HIL_MEET_DIR": str(meet_dir), "HIL_MEET_HOST": name}))
        with Lab(sched.address) as client:
            client.client.wait_for_workers(2, timeout=120)
            yield client, *workers
    finally:
        for w in workers:
            w.stop()
        sched.stop()


def test_each_worker_offers_its_rig_as_a_resource(lab):
    client, a, b = lab
    offers = client.offers()
    assert set(offers) == {"sim-lab-a", "sim-lab-b"}
    assert len(offers["sim-lab-a"]) == len(offers["sim-lab-b"]) == 1
    assert offers["sim-lab-a"] != offers["sim-lab-b"]
    assert a.banner.endswith(f"serving rig-sim-lab-a=1 to {client.address}\n")
    assert a.banner.startswith("worker ") and "/sim-lab-a at tcp://127.0.0.1:" in a.banner
    resources = {tuple(info["resources"].items())
                 for info in client.client.sync(client.client.scheduler.identity, n_workers=-1)["workers"].values()}
    assert resources == {(("rig-sim-lab-a", 1),), (("rig-sim-lab-b", 1),)}


def test_a_rig_no_worker_offers_is_an_error_before_anything_is_submitted(lab):
    client = lab[0]
    with pytest.raises(ClusterError) as err:
        client.bench_runner("sim-lab-c")
    assert str(err.value) == (
        f"no worker at {client.address} offers rig 'sim-lab-c'; rigs offered: "
        f"sim-lab-a ({client.offers()['sim-lab-a'][0]}), sim-lab-b ({client.offers()['sim-lab-b'][0]})")
    assert client.client.processing() == {w: () for w in client.client.processing()}


def test_unreachable_scheduler_is_a_cluster_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=rf"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        Lab(f"tcp://127.0.0.1:{port}", timeout=1)


def test_worker_refuses_a_bad_rig_file_and_a_rig_given_twice(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbuses: {}\n")
    hil = [sys.executable, "-c", "from hil.cli import main; main()", "worker", "--scheduler", "tcp://127.0.0.1:1"]
    out = subprocess.run([*hil, str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {bad}:2:1: buses: ")
    twice = RIGS / "sim-lab-a.yaml"
    copy = tmp_path / "copy.yaml"
    copy.write_text(twice.read_text())
    out = subprocess.run([*hil, str(twice), str(copy)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"rig 'sim-lab-a' is given twice: {twice} and {copy}" in out.stderr
    out = subprocess.run([*hil, "--connect-timeout", "1", "--runs", str(tmp_path / "runs"), str(twice)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert out.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 1 s")


def test_benches_of_two_rigs_run_in_parallel_and_never_two_on_one_rig(lab, tmp_path):
    """Each rig runs the meet suite (two benches) through its own worker. A meet bench is ready only
    once a bench on the other rig has started too, so both suites pass only if the rigs overlap."""
    client = lab[0]
    results, runners, events, errors = {}, {}, [], []

    def run(rig: str) -> None:
        try:
            runners[rig] = client.bench_runner(rig)
            rig_file = client.fetch_rig(rig, tmp_path / "rigs" / rig)
            results[rig] = run_suite(rig_file, MEET, SuiteOptions(
                out=tmp_path / rig, record_history=False, run_bench=runners[rig], on_event=events.append))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(rig,)) for rig in ("sim-lab-a", "sim-lab-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    offers = client.offers()
    for rig, result in results.items():
        assert [(b.name, b.verdict) for b in result.benches] == [("first", "pass"), ("second", "pass")], \
            [b.error for b in result.benches]
        assert result.rig == rig
        places = sorted(runners[rig].placements, key=lambda p: p.started_ns)
        assert [p.worker for p in places] == offers[rig] * 2  # only on the worker that owns the rig
        assert places[0].ended_ns <= places[1].started_ns  # one at a time on a rig
        recording = Path(places[0].run_dir) / "first" / "recording.mcap"
        assert recording.is_file()  # the recording stays on the worker ...
        assert not (tmp_path / rig / "first" / "recording.mcap").exists()  # ... unless fetched
    a = runners["sim-lab-a"].placements
    b = runners["sim-lab-b"].placements
    assert any(x.started_ns < y.ended_ns and y.started_ns < x.ended_ns for x in a for y in b)
    phases = {(e.bench, e.phase) for e in events}  # progress came back from the workers
    assert {("first", "deploy"), ("first", "record"), ("second", "done")} <= phases


def test_fetch_artifacts_copies_the_bench_folder(lab, tmp_path, meet_dir):
    client = lab[0]
    (meet_dir / "elsewhere-0").touch()  # the meet component of this lone bench need not wait
    runner = client.bench_runner("sim-lab-b", fetch_artifacts=True)
    rig_file = client.fetch_rig("sim-lab-b", tmp_path / "rig")
    assert rig_file.read_text() == (RIGS / "sim-lab-b.yaml").read_text()
    result = runner(rig_file, MEET, "second", tmp_path / "run", BenchOptions(repeat=2))
    assert result.verdict == "pass", result.error
    assert (tmp_path / "run" / "second#2" / "recording.mcap").stat().st_size > 0
    assert runner.placements[0].bench_dir == "second#2"
    place = runner.placements[0]  # results.json says where the worker keeps the bench's folder
    assert result.files["remote"] == {"worker": place.worker, "host": place.host,
                                      "folder": f"{place.run_dir}/second#2"}
    # the same bench again (as a retry does): the worker sets the earlier folder aside first
    assert runner(rig_file, MEET, "second", tmp_path / "run", BenchOptions(repeat=2)).verdict == "pass"
    there = Path(runner.placements[1].run_dir)
    assert (there / "second#2.attempt-1" / "recording.mcap").is_file()
    assert (there / "second#2" / "recording.mcap").is_file()


def test_a_rig_whose_worker_leaves_ends_in_an_error_verdict(lab, tmp_path):
    client = lab[0]
    rig = tmp_path / "sim-lab-c.yaml"
    rig.write_text((RIGS / "sim-lab-a.yaml").read_text().replace("sim-lab-a", "sim-lab-c"))
    worker = HilWorker(client.address, tmp_path, str(rig))
    try:
        client.client.wait_for_workers(3, timeout=120)
        runner = client.bench_runner("sim-lab-c")
        copy = client.fetch_rig("sim-lab-c", tmp_path / "copy")  # a rig file outside the checkout
        assert (copy, copy.read_text()) == (tmp_path / "copy" / "sim-lab-c.yaml", rig.read_text())
    finally:
        worker.stop()
    result = runner(rig, MEET, "first", tmp_path / "run", BenchOptions())
    assert (result.verdict, result.error_kind, result.phase) == ("error", "ClusterError", "dispatch")
    assert result.error == (f"bench 'first': no worker offers rig 'sim-lab-c' any more "
                            f"(its worker left the scheduler at {client.address})")


def test_hil_run_with_a_scheduler_runs_rigs_by_name_on_their_workers(lab, tmp_path):
    client = lab[0]
    env = {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks"), "NO_COLOR": "1", "COLUMNS": "200"}
    hil = [sys.executable, "-c", "from hil.cli import main; main()", "run", str(MEET), "--scheduler", client.address,
           "--no-history", "--bench", "first"]
    r = subprocess.run([*hil, "--rig", "sim-lab-a", "--rig", "sim-lab-b", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, env=env, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "suite meet on 2 rigs" in r.stdout
    for rig in ("sim-lab-a", "sim-lab-b"):
        results = json.loads((tmp_path / "run" / rig / "results.json").read_text())
        assert (results["rig"], results["verdict"]) == (rig, "pass")
        assert results["rig_path"] == str(RIGS / f"{rig}.yaml")  # the worker's rig file is this checkout's
    r = subprocess.run([*hil, "--rig", "sim-lab-a", "--rig", "sim-lab-z", "--out", str(tmp_path / "nope")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 3
    assert r.stderr.startswith(f"error: no worker at {client.address} offers rig 'sim-lab-z'; rigs offered: ")
    assert not (tmp_path / "nope").exists()


def test_health_gate_through_the_scheduler(lab, tmp_path):
    """A rig with a health suite, on its own worker: the check runs there first, and a failing one
    refuses the run."""
    client = lab[0]
    ops = Path(__file__).with_name("ops")
    rig = tmp_path / "sim-lab-h.yaml"
    rig.write_text((RIGS / "sim-lab-a.yaml").read_text().replace("name: sim-lab-a", "name: sim-lab-h")
                   + f"\nhealth: {ops / 'health.yaml'}\n")
    health = tmp_path / "health"
    health.write_text("good")
    worker = HilWorker(client.address, tmp_path, str(rig), env={"HIL_HEALTH_FILE": str(health)})
    env = {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks"), "NO_COLOR": "1"}
    hil = [sys.executable, "-c", "from hil.cli import main; main()", "run", str(ops / "work.yaml"),
           "--scheduler", client.address, "--rig", "sim-lab-h"]
    try:
        r = subprocess.run([*hil, "--out", str(tmp_path / "r1"), "--history", str(tmp_path / "h1.sqlite")],
                           capture_output=True, text=True, env=env, timeout=280)
        assert r.returncode == 0, r.stdout + r.stderr
        checked = json.loads((tmp_path / "r1" / "health" / "results.json").read_text())
        assert (checked["suite"], checked["rig"], checked["verdict"]) == ("rig-check", "sim-lab-h", "pass")
        health.write_text("bad")
        r = subprocess.run([*hil, "--out", str(tmp_path / "r2"), "--history", str(tmp_path / "h2.sqlite")],
                           capture_output=True, text=True, env=env, timeout=280)
        assert r.returncode == 3, r.stdout + r.stderr
        assert r.stderr.startswith("error: rig 'sim-lab-h' is unhealthy: its health check 'rig-check' failed")
        assert not (tmp_path / "r2" / "results.json").exists()
    finally:
        worker.stop()


def long_suite(tmp_path: Path) -> Path:
    """A suite whose one bench holds its rig for 10 minutes (the meet component, already met)."""
    suite = tmp_path / "long.yaml"
    suite.write_text(f"name: long\ndefaults: {{stack: {MEET.with_name('stack.yaml')}, settle: 0s}}\n"
                     "benches:\n  - {name: long, duration: 10min, timeout: 15min}\n")
    return suite


def started_component(meet_dir: Path, host: str, before: set[Path]) -> int:
    """The pid of the meet component a bench on ``host`` started (waits for its marker)."""
    deadline = time.monotonic() + 120
    while not (started := set(meet_dir.glob(f"{host}-*")) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started, f"the bench's component never started on worker {host}"
    (marker,) = started
    return int(marker.name.removeprefix(f"{host}-"))


def test_ctrl_c_cancels_the_bench_on_the_worker_and_waits_for_its_teardown(lab, tmp_path, meet_dir):
    """Ctrl-C while a bench runs on a lab host: the bench is torn down there (its process is gone),
    its `error` result comes back into the run folder, hil exits 130, and the rig is free again."""
    client = lab[0]
    (meet_dir / "elsewhere-1").touch()  # the meet component need not wait for another rig
    suite = long_suite(tmp_path)
    before = set(meet_dir.glob("a-*"))
    env = {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks"), "NO_COLOR": "1"}
    hil = [sys.executable, "-c", "from hil.cli import main; main()", "run", "--scheduler", client.address,
           "--rig", "sim-lab-a", "--no-history"]
    proc = subprocess.Popen([*hil, str(suite), "--out", str(tmp_path / "run")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        pid = started_component(meet_dir, "a", before)
        time.sleep(1.0)  # into the bench's 10 minutes
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, stdout + stderr
    assert "error: interrupted" in stderr
    bench = json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]
    assert (bench["name"], bench["verdict"], bench["error_kind"]) == ("long", "error", "KeyboardInterrupt")
    assert bench["error"] == "interrupted (Ctrl-C); the rig was torn down"
    assert not Path(f"/proc/{pid}").exists(), "the bench's process still runs on the worker"
    r = subprocess.run([*hil, str(MEET), "--bench", "first", "--out", str(tmp_path / "again")],
                       capture_output=True, text=True, env=env, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr  # the rig's lease and resource are free again


def test_stopping_a_worker_tears_down_its_running_bench_first(lab, tmp_path, meet_dir):
    """SIGTERM to a worker (systemd stop) mid-bench: the bench is torn down and the worker exits on
    its own, instead of running the bench to its end and being killed."""
    client = lab[0]
    rig = tmp_path / "sim-lab-s.yaml"
    rig.write_text((RIGS / "sim-lab-a.yaml").read_text().replace("sim-lab-a", "sim-lab-s"))
    (meet_dir / "elsewhere-2").touch()
    before = set(meet_dir.glob("s-*"))
    worker = HilWorker(client.address, tmp_path, str(rig), env={"HIL_MEET_DIR": str(meet_dir), "HIL_MEET_HOST": "s"})
    outcome = []
    try:
        client.client.wait_for_workers(3, timeout=120)
        runner = client.bench_runner("sim-lab-s")
        thread = threading.Thread(target=lambda: outcome.append(
            runner(rig, long_suite(tmp_path), "long", tmp_path / "run", BenchOptions())))
        thread.start()
        pid = started_component(meet_dir, "s", before)
        worker.stop()
        assert worker.proc.returncode == 0, (worker.log.read_text())[-3000:]
        assert not Path(f"/proc/{pid}").exists(), "the bench's process outlived its worker"
        thread.join(120)
        assert not thread.is_alive()
    finally:
        worker.stop()
    (result,) = outcome
    assert result.verdict == "error", result
