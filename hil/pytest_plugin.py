"""Benches written as pytest tests: ``pytest --hil-rig rigs/sim-aeb.yaml benches/test_*.py``.

The plugin (a ``pytest11`` entry point, so installed with hil) adds ``--hil-rig`` and fixtures for
the steps of a bench, each tearing down what it brought up, on every exit path:

``hil_rig``        the rig brought up for one test (its buses; the rig's lease is held for the session)
``hil_bench``      ``hil_bench(suite.yaml, name)`` plans a suite's bench on the rig: ``.bench`` (its
                   stimulus, probes, measurements), ``.stack``, ``.db`` (its DBC files)
``hil_deploy``     ``hil_deploy(plan)`` deploys a bench's stack as ``hil run`` does (bundle checked,
                   consoles opened first, power cycled on request), starts it, waits until it is ready
``hil_recording``  ``with hil_recording: ...`` records every bus and console; afterwards
                   ``hil_recording.analyse(plan)`` judges it as ``hil run`` does; when the harness
                   broke its budget (a busy host) it raises :class:`~hil.errors.HarnessError`
                   naming the breach instead: the stack's measurements are not judged
``hil_inject``     ``hil_inject(plan.bench.stimulus, plan.settle_ns)`` plays a stimulus onto the buses
                   (absolute deadlines), then lets the stack settle

Every measurement ``analyse`` judges goes into the JUnit report as properties
``hil.<measurement>`` (value and unit), ``hil.<measurement>.limits`` and ``hil.<measurement>.outcome``.
Without ``--hil-rig`` these fixtures skip the test, saying how to give a rig.

Each test's rig is a :class:`hil.session.RigSession`, the same as every other entry point's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the plugin loads with every pytest run: hil itself only once a fixture is used
    from hil.analysis.bench import Analysis
    from hil.bench.lease import Lease
    from hil.bench.plan import BenchPlan
    from hil.buses import RigBuses
    from hil.results import BenchResult
    from hil.session import RigSession
    from hil.spec.faults import Fault
    from hil.spec.rig import Rig
    from hil.spec.stack import Stack
    from hil.spec.suite import Stimulus
    from hil.stimulus.report import ReplayReport
    from hil.targets.base import Target

NO_RIG = "no rig given: run pytest with --hil-rig RIG.yaml (e.g. --hil-rig rigs/sim-aeb.yaml)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop benches")
    group.addoption("--hil-rig", metavar="RIG.yaml", help="Rig to run hil benches on; without it they skip.")
    group.addoption("--hil-runs", metavar="DIR", help="Folder for the run folders (recordings, logs) of "
                    "hil benches [default: pytest's temporary folder].")
    group.addoption("--hil-wait", metavar="SECONDS", type=float, default=None,
                    help="Wait this long for the rig's lease when someone else holds it [default: fail].")


class HilRig:
    """One test's rig session (:class:`hil.session.RigSession`, ``.session``): the rig spec
    (``.rig``), its buses, its run folder, what was deployed on it."""

    def __init__(self, session: RigSession):
        self.session = session

    @property
    def rig(self) -> Rig:
        return self.session.rig

    @property
    def buses(self) -> RigBuses | None:
        return self.session.buses

    @property
    def run_dir(self) -> Path:
        return self.session.folder

    @property
    def targets(self) -> dict[str, Target]:
        return {} if self.session.deployment is None else dict(self.session.deployment.targets)

    def deploy(self, stack: BenchPlan | str | Path | Stack, timeout_ns: int | None = None,
               power_cycle: bool = False) -> dict[str, Target]:
        """Deploy a stack as ``hil run`` and ``hil deploy`` do (its bundle built and verified where
        it lands, serial consoles opened first, every power switch cycled if ``power_cycle``), start
        it, wait until every target is ready; returns the targets by name. ``stack`` is a bench plan
        (its stack with the bench's ``config``), a stack file, or a loaded Stack."""
        from hil.bench.plan import BenchPlan

        if isinstance(stack, BenchPlan):
            return self.session.deploy(stack.deployed_stack, power_cycle=power_cycle, timeout_ns=timeout_ns)
        if isinstance(stack, (str, Path)):
            from hil.spec import load_stack

            stack = load_stack(stack).model
        return self.session.deploy(stack, power_cycle=power_cycle, timeout_ns=timeout_ns)

    def inject(self, stimulus: BenchPlan | Stimulus | None, settle_ns: int = 0,
               faults: dict[str, list[Fault]] | None = None) -> ReplayReport | None:
        """Play ``stimulus`` onto the buses, arming ``faults`` (bus → faults) as it starts, then let
        the stack answer for ``settle_ns``; returns the ReplayReport. ``stimulus`` may be a bench
        plan: its stimulus, faults and settle time, as ``hil run`` plays them. Echoes of the
        injected frames, armed faults and the phases go into the recording in progress."""
        from hil.bench.plan import BenchPlan
        from hil.session.inject import read_stimulus

        if isinstance(stimulus, BenchPlan):
            plan = stimulus
            stimulus, settle_ns, faults = plan.bench.stimulus, plan.settle_ns, plan.bench.faults
        _, report = self.session.inject(read_stimulus(stimulus, self.rig), faults)
        self.session.settle(settle_ns)
        return report


class HilRecording:
    """``with hil_recording:`` records the rig; then ``.analyse(plan)`` measures the recording
    (``.path``). Measurements go to JUnit as the test's properties (what
    ``record_property`` does, without its warning under the default ``junit_family``)."""

    def __init__(self, rig: HilRig, add_property: Callable[[str, object], None]):
        from hil.session.folders import RECORDING

        self.rig = rig
        self.path = rig.run_dir / RECORDING
        self.result: BenchResult | None = None
        self._add_property = add_property

    def __enter__(self) -> HilRecording:
        self.rig.session.record(self.path, metadata={"via": "pytest"})
        return self

    def __exit__(self, *exc: object) -> None:
        self.rig.session.stop_recording(*exc)

    def analyse(self, plan: BenchPlan) -> Analysis:
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
def hil_rig_spec(pytestconfig: pytest.Config) -> Rig:
    """The ``--hil-rig`` rig, loaded and checked (skips the test when no rig is given)."""
    path = pytestconfig.getoption("hil_rig")
    if path is None:
        pytest.skip(NO_RIG)
    from hil.spec import load_rig

    return load_rig(path).model


@pytest.fixture(scope="session")
def hil_lease(pytestconfig: pytest.Config, hil_rig_spec: Rig) -> Iterator[Lease]:
    """The rig's lease, held for the whole pytest session under hil's stop policy
    (:func:`hil.lifecycle.signals.installed`): SIGTERM (a cancelled CI job) ends the session as
    Ctrl-C does — the test in progress is torn down, no other test runs on the rig, the lease is
    freed, and the watchdog bounds that teardown. (Raised as SystemExit, pytest would fail one test
    and go on with the next.)"""
    from hil.bench.lease import Lease
    from hil.lifecycle import signals

    with signals.installed(), Lease(hil_rig_spec.name, wait=pytestconfig.getoption("hil_wait"),
                                    command="pytest --hil-rig") as lease:
        yield lease


@pytest.fixture
def hil_rig(request: pytest.FixtureRequest, hil_rig_spec: Rig, hil_lease: Lease,
            tmp_path: Path) -> Iterator[HilRig]:
    """The rig brought up for this test: buses up (the simbus broker for emulated ones); what the
    test deploys and records is torn down with it."""
    from hil.session import RigSession
    from hil.session.folders import BENCH_CONSOLES, safe_name

    runs = request.config.getoption("hil_runs")
    run_dir = Path(runs) / safe_name(request.node.name) if runs else tmp_path
    run_dir.mkdir(parents=True, exist_ok=True)
    with RigSession(hil_rig_spec, run_dir, consoles=BENCH_CONSOLES) as session:
        session.up()
        yield HilRig(session)


@pytest.fixture
def hil_deploy(hil_rig: HilRig) -> Callable[..., dict[str, Target]]:
    """``hil_deploy(plan)`` (or a stack file or Stack): deploy, start and wait ready; the targets
    stop at teardown."""
    return hil_rig.deploy


@pytest.fixture
def hil_inject(hil_rig: HilRig) -> Callable[..., ReplayReport | None]:
    """``hil_inject(plan)`` (or ``hil_inject(stimulus, settle_ns=0, faults=None)``): play the
    stimulus with the bench's faults, then settle; returns the ReplayReport."""
    return hil_rig.inject


@pytest.fixture
def hil_recording(request: pytest.FixtureRequest, hil_rig: HilRig) -> HilRecording:
    """``with hil_recording: ...`` records every recorded bus and console of the rig; then
    ``hil_recording.analyse(plan)`` measures, and the measurements go to JUnit."""
    return HilRecording(hil_rig, lambda name, value: request.node.user_properties.append((name, value)))


@pytest.fixture
def hil_bench(pytestconfig: pytest.Config, hil_rig_spec: Rig) -> Callable[[str | Path, str], BenchPlan]:
    """``hil_bench(suite.yaml, name)``: the bench planned on the ``--hil-rig`` rig — ``.bench``,
    ``.stack``, ``.db`` (DBC) — with rig, suite and stack checked by the spec loader."""
    from hil.bench.plan import plan_bench

    return lambda suite_path, name: plan_bench(pytestconfig.getoption("hil_rig"), suite_path, name)
