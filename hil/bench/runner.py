"""Run one bench: bring up → deploy → start → ready → record → inject → settle → stop → teardown
(always) → analyse → verdict.

Teardown is an ``ExitStack``: the recorder closes first (the recording is complete), then every
target stops, then the buses and the simbus broker go down — on success, on any error and on a
stop alike (Ctrl-C, SIGTERM, SIGHUP: :mod:`hil.lifecycle.signals`). Infrastructure errors become
the ``error`` verdict with the phase they happened in; only spec problems (found before anything
starts) and stops leave as exceptions — a stop as :class:`Interrupted` (a ``KeyboardInterrupt``)
carrying the bench's result, which names the signal.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from hil import cancel
from hil.bench.consoles import Consoles
from hil.bench.inject import inject, read_stimulus
from hil.bench.plan import BenchPlan, plan_bench
from hil.results import BenchResult, run_key
from hil.bench.verdict import judge_recording
from hil.clock import now_ns
from hil.errors import HilError, ReplayStoppedError, TargetTimeoutError
from hil.lifecycle.signals import Stopped, stopped
from hil.spec.common import format_duration
from hil.values import Verdict

RECORDING = "recording.mcap"
ALIVE_POLL_S = 0.05


@dataclass(frozen=True)
class Event:
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
    on_event: Callable[[Event], None] | None = None
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
        self.phase = "plan"
        self.consoles = Consoles(self.dir / "console")
        self.deadline_ns: int | None = None
        self.timeline = None  # the stimulus, read before the rig is brought up
        self.recorder: Any = None  # while recording: phases go into the recording too

    def execute(self) -> BenchResult:
        bench = self.plan.bench
        self.dir.mkdir(parents=True, exist_ok=True)
        result = BenchResult(bench.name, Verdict.ERROR, self.options.repeat, self.plan.rig.name, str(self.dir), utc_now())
        start = now_ns()
        self.deadline_ns = start + self.plan.timeout_ns
        stopped_by: Stopped | None = None
        try:
            self.timeline = read_stimulus(bench.stimulus, self.plan.rig)  # a bad file costs no bring-up
            self._on_rig()
            self._enter("analyse")
            judge_recording(self.plan.bench, self.plan.harness_budget, self.plan.db, self.dir / RECORDING, self.dir,
                            result)
        except KeyboardInterrupt as exc:  # the rig is torn down by now (ExitStack); report, then pass it on
            stopped_by = stopped(exc)
            result.phase = self.phase
        except HilError as exc:
            self._fail(result, str(exc), type(exc).__name__)
        except Exception as exc:  # a bug in hil itself: still a verdict, with the place it happened
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self._fail(result, f"internal error: {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})",
                       "InternalError")
        finally:
            self.consoles.close()
            result.duration_s = (now_ns() - start) / 1e9
        result.files.update(self._files())
        if stopped_by is not None:
            record_stop(result, stopped_by)
            raise Interrupted(result, stopped_by.signum)
        self._enter("done", str(result.verdict))  # a plain str: Dask sends events as msgpack
        return result

    # -- on the rig ------------------------------------------------------------------------------

    def _on_rig(self) -> None:
        from hil.buses import RigBuses
        from hil.recording import Recorder
        from hil.targets.deployment import Deployment

        plan, bench = self.plan, self.plan.bench
        with ExitStack() as teardown:
            self._enter("bring-up")
            buses = teardown.enter_context(RigBuses(plan.rig, self.dir))
            self._enter("deploy")
            deployment = teardown.enter_context(Deployment(
                plan.rig, plan.deployed_stack, buses, self.dir, on_event=self._on_target, on_console=self.consoles.add))
            deployment.up()
            self._enter("record")
            recorder = teardown.enter_context(Recorder(self.dir / RECORDING, buses, self._recorded(), {
                "suite": plan.suite.name, "bench": bench.name, "rig": plan.rig.name, "repeat": self.options.repeat,
                "stack": f"{plan.stack.name} {plan.stack.version}" if plan.stack else ""}))
            self.consoles.recorder = self.recorder = recorder
            teardown.callback(self._detach)
            self._enter("inject")
            origin = self._inject(buses, recorder)
            self._hold(buses, deployment, origin + (bench.duration or 0))
            self._enter("settle")
            self._hold(buses, deployment, now_ns() + plan.settle_ns)
            recorder.event("bus-stats", {name: buses.stats(name) for name in self._emulated_can()})
            self._enter("stop")

    def _inject(self, buses: Any, recorder: Any) -> int:
        """Play the stimulus, arming the faults as it starts; returns the start on the run clock."""
        bench = self.plan.bench
        try:
            origin, _ = inject(self.timeline, bench.faults, buses, recorder, self.deadline_ns)
        except ReplayStoppedError:
            raise TargetTimeoutError(f"{self._timeout_message()}: the replay was stopped") from None
        except HilError:
            buses.check_alive()  # a dead broker is the cause, whatever the injector saw of it
            raise
        return origin

    def _hold(self, buses: Any, deployment: Any, until_ns: int) -> None:
        """Wait until ``until_ns``, raising at once if the simbus broker or a component on a target
        died meanwhile (the broker first: without it every component loses its buses)."""
        while True:
            cancel.check()
            buses.check_alive()  # raises BusError naming how the broker ended
            deployment.check_alive()  # raises DeployError naming the component that died
            self._check_deadline()
            left = until_ns - now_ns()
            if left <= 0:
                return
            time.sleep(min(ALIVE_POLL_S, left / 1e9))

    # -- helpers ---------------------------------------------------------------------------------

    def _check_deadline(self) -> None:
        """The bench's ``timeout`` bounds the whole bench; checked between steps and while holding."""
        if self.deadline_ns is not None and now_ns() > self.deadline_ns:
            raise TargetTimeoutError(self._timeout_message())

    def _timeout_message(self) -> str:
        return (f"bench {self.plan.bench.name!r} ran longer than its timeout of "
                f"{format_duration(self.plan.timeout_ns)} (in phase {self.phase})")

    def _on_target(self, event: Any) -> None:
        """Deployment steps (every target deploys, then every target starts, then all wait) → phases."""
        phase = {"starting": "start", "waiting": "ready"}.get(event.phase)
        if phase is not None and phase != self.phase:
            self._enter(phase)

    def _detach(self) -> None:
        """The recording is about to close: consoles and phases stop going into it."""
        self.consoles.detach()
        self.recorder = None

    def _recorded(self) -> list[str]:
        """Buses to record: the bench's list, else every recorded CAN bus and every serial bus that
        is not a target's console (consoles reach the recording as lines)."""
        rig = self.plan.rig
        if self.plan.bench.record is not None:
            return list(self.plan.bench.record)
        consoles = {t.console for t in rig.targets.values() if t.console}
        return [n for n, b in rig.buses.items() if b.record and (b.kind == "can" or n not in consoles)]

    def _emulated_can(self) -> list[str]:
        return [n for n, b in self.plan.rig.buses.items() if b.kind == "can" and b.emulated]

    def _enter(self, phase: str, message: str = "") -> None:
        cancel.check()
        if phase in ("start", "ready", "record", "inject", "settle"):
            self._check_deadline()
        self.phase = phase
        if self.recorder is not None:
            self.recorder.event("phase", {"phase": phase})
        if self.options.on_event is not None:
            self.options.on_event(Event(self.plan.bench.name, self.options.repeat, phase, message))

    def _fail(self, result: BenchResult, message: str, kind: str) -> None:
        result.verdict, result.error, result.error_kind, result.phase = Verdict.ERROR, message, kind, self.phase

    def _files(self) -> dict[str, Any]:
        """The bench's artifacts, relative to the run folder."""
        rel = lambda p: str(p.relative_to(self.run_dir))  # noqa: E731
        out: dict[str, Any] = {}
        if (self.dir / RECORDING).is_file():
            out["recording"] = rel(self.dir / RECORDING)
        if self.consoles.paths:
            out["consoles"] = {name: rel(p) for name, p in self.consoles.paths.items()}
        return out
