"""Run one bench: bring up → deploy → start → ready → record → inject → settle → stop → teardown
(always) → analyse → verdict.

The rig is a :class:`~hil.session.RigSession`: its teardown closes the recorder first (the
recording is complete), then stops every target, then takes the buses and the simbus broker down —
on success, on any error and on a stop alike (Ctrl-C, SIGTERM, SIGHUP: :mod:`hil.lifecycle.signals`).
Infrastructure errors become the ``error`` verdict with the phase they happened in; only spec
problems (found before anything starts) and stops leave as exceptions — a stop as
:class:`Interrupted` (a ``KeyboardInterrupt``) carrying the bench's result, which names the signal.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.bench.plan import BenchPlan, plan_bench
from hil.results import BenchResult, run_key
from hil.bench.verdict import judge_recording
from hil.clock import now_ns
from hil.errors import HilError
from hil.lifecycle.signals import Stopped, stopped
from hil.session import Deadline, RigSession
from hil.session.folders import BENCH_CONSOLES, RECORDING
from hil.session.inject import read_stimulus
from hil.values import Verdict

if TYPE_CHECKING:
    from hil.stimulus.timeline import Timeline


@dataclass(frozen=True)
class BenchEvent:
    """Progress of one bench: which phase it entered (and, at the end, its verdict)."""

    bench: str
    repeat: int
    phase: str
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Interrupted(Stopped):
    """A stop during a bench, raised after its teardown; ``result`` is the bench's ``error`` result."""

    def __init__(self, result: BenchResult, signum: int | None):
        super().__init__(signum)
        self.result = result


def record_stop(result: BenchResult, stop: Stopped) -> None:
    """Make ``result`` the error of a bench that ``stop`` cut short (and that was torn down)."""
    result.verdict, result.error, result.error_kind = Verdict.ERROR, f"{stop}; the rig was torn down", "KeyboardInterrupt"


@dataclass
class BenchOptions:
    repeat: int = 0
    on_event: Callable[[BenchEvent], None] | None = None
    stacks: dict[str, str] = field(default_factory=dict)  # the suite's stacks replaced: OLD → NEW (--stack)


def run_bench(rig_path: str | Path, suite_path: str | Path, bench: str, run_dir: Path,
              options: BenchOptions | None = None) -> BenchResult:
    """Run bench ``bench`` of the suite on the rig; its folder is created inside ``run_dir``."""
    options = options or BenchOptions()
    return BenchRun(plan_bench(rig_path, suite_path, bench, options.stacks), Path(run_dir), options).execute()


def bench_folder(name: str, repeat: int) -> str:
    """The folder of a bench run inside the run folder: its run key (``name``, ``name#N``)."""
    return run_key(name, repeat)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BenchRun:
    """One execution of a planned bench."""

    def __init__(self, plan: BenchPlan, run_dir: Path, options: BenchOptions):
        self.plan, self.options = plan, options
        self.run_dir = run_dir.resolve()
        self.dir = self.run_dir / bench_folder(plan.bench.name, options.repeat)
        self.session = RigSession(plan.rig, self.dir, on_phase=self._on_phase, consoles=BENCH_CONSOLES)
        self.timeline: Timeline | None = None  # the stimulus, read before the rig is brought up

    def execute(self) -> BenchResult:
        bench, session = self.plan.bench, self.session
        self.dir.mkdir(parents=True, exist_ok=True)
        result = BenchResult(bench.name, Verdict.ERROR, self.options.repeat, self.plan.rig.name, str(self.dir), utc_now())
        start = now_ns()
        session.deadline = Deadline(start + self.plan.timeout_ns, f"bench {bench.name!r}", self.plan.timeout_ns)
        stopped_by: Stopped | None = None
        try:
            self.timeline = read_stimulus(bench.stimulus, self.plan.rig)  # a bad file costs no bring-up
            with session:
                self._on_rig()
            session.enter("analyse")
            judge_recording(self.plan.bench, self.plan.harness_budget, self.plan.db, self.dir / RECORDING, self.dir,
                            result)
        except KeyboardInterrupt as exc:  # the rig is torn down by now; report, then pass it on
            stopped_by = stopped(exc)
            result.phase = session.phase
        except HilError as exc:
            self._fail(result, str(exc), type(exc).__name__)
        except Exception as exc:  # a bug in hil itself: still a verdict, with the place it happened
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self._fail(result, f"internal error: {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})",
                       "InternalError")
        finally:
            result.duration_s = (now_ns() - start) / 1e9
        result.files.update(self._files())
        self._power_cycled(result)
        if stopped_by is not None:
            record_stop(result, stopped_by)
            raise Interrupted(result, stopped_by.signum)
        session.enter("done", str(result.verdict))  # a plain str: Dask sends events as msgpack
        return result

    def _on_rig(self) -> None:
        plan, bench, session = self.plan, self.plan.bench, self.session
        session.up()
        session.deploy(plan.deployed_stack, power_cycle=plan.power_cycle)
        session.record(names=bench.record, metadata={
            "suite": plan.suite.name, "bench": bench.name, "repeat": self.options.repeat,
            "stack": f"{plan.stack.name} {plan.stack.version}" if plan.stack else ""})
        origin, _ = session.inject(self.timeline, bench.faults)
        session.hold(origin + (bench.duration or 0))
        session.settle(plan.settle_ns)
        session.enter("stop")

    def _on_phase(self, phase: str, message: str) -> None:
        if self.options.on_event is not None:
            self.options.on_event(BenchEvent(self.plan.bench.name, self.options.repeat, phase, message))

    def _fail(self, result: BenchResult, message: str, kind: str) -> None:
        result.verdict, result.error, result.error_kind, result.phase = Verdict.ERROR, message, kind, self.session.phase

    def _power_cycled(self, result: BenchResult) -> None:
        """Which targets were power-cycled before deploying; one the bench asked to cycle that no
        power switch feeds is a warning, not silently left as it was."""
        deployment = self.session.deployment
        if deployment is None:
            return
        result.power_cycled = list(deployment.power_cycled)
        if self.plan.power_cycle:
            result.warnings += [f"power_cycle: no power switch feeds target {name!r}; it was not power-cycled"
                                for name in deployment.targets if self.plan.rig.targets[name].power is None]

    def _files(self) -> dict[str, Any]:
        """The bench's artifacts, relative to the run folder."""
        rel = lambda p: str(p.relative_to(self.run_dir))  # noqa: E731
        out: dict[str, Any] = {}
        if (self.dir / RECORDING).is_file():
            out["recording"] = rel(self.dir / RECORDING)
        if self.session.consoles.paths:
            out["consoles"] = {name: rel(p) for name, p in self.session.consoles.paths.items()}
        return out
