"""Benches written as pytest tests: ``pytest --hil-rig rigs/sim-aeb.yaml benches/test_*.py``.

The plugin (a ``pytest11`` entry point, so installed with hil) adds ``--hil-rig`` and fixtures for
the steps of a bench, each tearing down what it brought up, on every exit path:

``hil_rig``        the rig brought up for one test (its buses; the rig's lease is held for the session)
``hil_bench``      ``hil_bench(suite.yaml, name)`` plans a suite's bench on the rig: ``.bench`` (its
                   stimulus, probes, measurements), ``.stack``, ``.db`` (its DBC files)
``hil_deploy``     ``hil_deploy(plan.stack)`` deploys a stack, starts it, waits until it is ready
``hil_recording``  ``with hil_recording: ...`` records every bus and console; afterwards
                   ``hil_recording.analyse(plan)`` judges it as ``hil run`` does; when the harness
                   broke its budget (a busy host) it raises :class:`~hil.errors.HarnessError`
                   naming the breach instead: the stack's measurements are not judged
``hil_inject``     ``hil_inject(plan.bench.stimulus, plan.settle_ns)`` plays a stimulus onto the buses
                   (absolute deadlines), then lets the stack settle

Every measurement ``analyse`` judges goes into the JUnit report as properties
``hil.<measurement>`` (value and unit), ``hil.<measurement>.limits`` and ``hil.<measurement>.outcome``.
Without ``--hil-rig`` these fixtures skip the test, saying how to give a rig.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NO_RIG = "no rig given: run pytest with --hil-rig RIG.yaml (e.g. --hil-rig rigs/sim-aeb.yaml)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop benches")
    group.addoption("--hil-rig", metavar="RIG.yaml", help="Rig to run hil benches on; without it they skip.")
    group.addoption("--hil-runs", metavar="DIR", help="Folder for the run folders (recordings, logs) of "
                    "hil benches [default: pytest's temporary folder].")
    group.addoption("--hil-wait", metavar="SECONDS", type=float, default=None,
                    help="Wait this long for the rig's lease when someone else holds it [default: fail].")


class HilRig:
    """One test's brought-up rig: the rig spec, its buses, its run folder, what was deployed on it."""

    def __init__(self, rig: Any, buses: Any, run_dir: Path):
        self.rig, self.buses, self.run_dir = rig, buses, run_dir
        self.targets: dict[str, Any] = {}
        self.recorder: Any = None  # the recording in progress, which console lines also go to

    def deploy(self, stack: Any, timeout_ns: int | None = None) -> dict[str, Any]:
        """Deploy a stack to its targets, start them, wait until all are ready; returns the targets
        by name. ``stack`` is a bench plan (its stack with the bench's ``config``), a stack file,
        or a loaded Stack."""
        from hil.bench.plan import BenchPlan
        from hil.targets import components_for, create_target

        if isinstance(stack, BenchPlan):
            stack = stack.deployed_stack
        elif isinstance(stack, (str, Path)):
            from hil.spec import load_stack

            stack = load_stack(stack).model
        for name, spec in self.rig.targets.items():
            components = components_for(stack, name)
            if not components:
                continue
            target = create_target(name, spec, self.rig, self.buses, self.run_dir, self._console)
            self.targets[name] = target
            target.deploy(components, None)
            target.start()
        for target in self.targets.values():
            target.wait_ready(timeout_ns)
        return dict(self.targets)

    def inject(self, stimulus: Any, settle_ns: int = 0, faults: Any = None) -> Any:
        """Play ``stimulus`` onto the buses, arming ``faults`` (bus → faults) as it starts, then let
        the stack answer for ``settle_ns``; returns the ReplayReport. ``stimulus`` may be a bench
        plan: its stimulus, faults and settle time, as ``hil run`` plays them. Echoes of the
        injected frames and armed faults go into the recording in progress."""
        import time

        from hil.bench.inject import inject, read_stimulus
        from hil.bench.plan import BenchPlan

        if isinstance(stimulus, BenchPlan):
            stimulus, settle_ns, faults = stimulus.bench.stimulus, stimulus.settle_ns, stimulus.bench.faults
        _, report = inject(read_stimulus(stimulus, self.rig), faults or {}, self.buses, self.recorder)
        time.sleep(settle_ns / 1e9)
        return report

    def stop(self) -> None:
        """Stop every target (reverse order of deployment); the first error is raised after all."""
        errors = []
        for target in reversed(list(self.targets.values())):
            try:
                target.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self.targets.clear()
        if errors:
            raise errors[0]

    def _console(self, line: Any) -> None:
        if self.recorder is not None:
            self.recorder.console(line)


class HilRecording:
    """``with hil_recording:`` records the rig; then ``.analyse(plan)`` measures the recording
    (``.path``). Measurements go to JUnit as the test's properties (what
    ``record_property`` does, without its warning under the default ``junit_family``)."""

    def __init__(self, rig: HilRig, add_property: Callable[[str, object], None]):
        self.rig = rig
        self.path = rig.run_dir / "recording.mcap"
        self.result: Any = None
        self._add_property = add_property

    def __enter__(self) -> HilRecording:
        from hil.recording.recorder import Recorder

        rig = self.rig.rig  # as the bench runner: consoles arrive as lines, not as serial bytes
        consoles = {t.console for t in rig.targets.values() if t.console}
        names = [n for n, b in rig.buses.items() if b.record and (b.kind == "can" or n not in consoles)]
        recorder = Recorder(self.path, self.rig.buses, names, {"rig": self.rig.rig.name, "via": "pytest"})
        recorder.start()
        self.rig.recorder = recorder
        return self

    def __exit__(self, *exc: object) -> None:
        recorder, self.rig.recorder = self.rig.recorder, None
        try:
            emulated = [n for n, b in self.rig.rig.buses.items() if b.kind == "can" and b.emulated]
            recorder.event("bus-stats", {name: self.rig.buses.stats(name) for name in emulated})
        finally:
            recorder.close()

    def analyse(self, plan: Any) -> Any:
        """Judge the recording as ``hil run`` does, for the bench ``plan`` (from ``hil_bench``):
        probes, chains, measurements (replay and bus figures from the recording), plots. Returns
        the Analysis; ``.result`` is the BenchResult. Every measurement becomes JUnit properties."""
        from hil.results import BenchResult
        from hil.values import Verdict
        from hil.bench.verdict import HARNESS_ERROR, judge_recording
        from hil.errors import HarnessError

        self.result = BenchResult(plan.bench.name, Verdict.ERROR, rig=self.rig.rig.name, dir=str(self.rig.run_dir))
        analysis = judge_recording(plan.bench, plan.harness_budget, plan.db, self.path, self.rig.run_dir, self.result)
        for m in self.result.measurements:
            key = f"hil.{m.name}"
            self._add_property(key, "" if m.value is None else f"{m.value:.6g} {m.unit}".strip())
            self._add_property(f"{key}.limits", m.limits)
            self._add_property(f"{key}.outcome", m.outcome)
        if self.result.error_kind == HARNESS_ERROR:  # never a pass (nor the stack's fail) on a broken harness
            raise HarnessError(f"bench {plan.bench.name}: {self.result.error}")
        return analysis


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hil_rig_spec(pytestconfig: pytest.Config) -> Any:
    """The ``--hil-rig`` rig, loaded and checked (skips the test when no rig is given)."""
    path = pytestconfig.getoption("hil_rig")
    if path is None:
        pytest.skip(NO_RIG)
    from hil.spec import load_rig

    return load_rig(path).model


@pytest.fixture(scope="session")
def hil_lease(pytestconfig: pytest.Config, hil_rig_spec: Any) -> Iterator[Any]:
    """The rig's lease, held for the whole pytest session. SIGTERM (a cancelled CI job) ends the
    session as Ctrl-C does: the test in progress is torn down, no other test runs on the rig, the
    lease is freed. (Raised as SystemExit, pytest would fail one test and go on with the next.)"""
    import signal
    import threading

    from hil.bench.lease import Lease
    from hil.lifecycle.signals import Stopped

    def interrupt(signum: int, _frame: Any) -> None:
        raise Stopped(signum)  # a KeyboardInterrupt naming SIGTERM

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        with Lease(hil_rig_spec.name, wait=pytestconfig.getoption("hil_wait"),
                   command="pytest --hil-rig") as lease:
            yield lease
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def hil_rig(request: pytest.FixtureRequest, hil_rig_spec: Any, hil_lease: Any,
            tmp_path: Path) -> Iterator[HilRig]:
    """The rig brought up for this test: buses up (the simbus broker for emulated ones)."""
    from hil.buses import RigBuses

    runs = request.config.getoption("hil_runs")
    run_dir = Path(runs) / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name) if runs else tmp_path
    run_dir.mkdir(parents=True, exist_ok=True)
    with RigBuses(hil_rig_spec, run_dir) as buses:
        rig = HilRig(hil_rig_spec, buses, run_dir)
        try:
            yield rig
        finally:
            rig.stop()


@pytest.fixture
def hil_deploy(hil_rig: HilRig) -> Callable[..., dict[str, Any]]:
    """``hil_deploy(plan)`` (or a stack file or Stack): deploy, start and wait ready; the targets
    stop at teardown."""
    return hil_rig.deploy


@pytest.fixture
def hil_inject(hil_rig: HilRig) -> Callable[[Any], Any]:
    """``hil_inject(plan)`` (or ``hil_inject(stimulus, settle_ns=0, faults=None)``): play the
    stimulus with the bench's faults, then settle; returns the ReplayReport."""
    return hil_rig.inject


@pytest.fixture
def hil_recording(request: pytest.FixtureRequest, hil_rig: HilRig) -> HilRecording:
    """``with hil_recording: ...`` records every recorded bus and console of the rig; then
    ``hil_recording.analyse(plan)`` measures, and the measurements go to JUnit."""
    return HilRecording(hil_rig, lambda name, value: request.node.user_properties.append((name, value)))


@pytest.fixture
def hil_bench(pytestconfig: pytest.Config, hil_rig_spec: Any) -> Callable[[str | Path, str], Any]:
    """``hil_bench(suite.yaml, name)``: the bench planned on the ``--hil-rig`` rig — ``.bench``,
    ``.stack``, ``.db`` (DBC) — with rig, suite and stack checked by the spec loader."""
    from hil.bench.plan import plan_bench

    return lambda suite_path, name: plan_bench(pytestconfig.getoption("hil_rig"), suite_path, name)
