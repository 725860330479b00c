"""A suite on one rig or several, here or through the lab's Dask scheduler: what ``hil run`` does
around the suite runner.

For each rig: resolve it (a rig file; with a scheduler also a rig name, whose file is fetched from
the worker that owns it), take its lease (here; on a worker the worker takes it per bench), pass
the health gate, run the suite with retries of ``error`` benches. Several rigs run at the same time,
each in its own run folder ``OUT/<rig>``; ``OUT`` then holds them side by side (``junit.xml`` with
every rig's benches, ``rigs.html``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.bench import SuiteOptions, SuiteResult, run_suite
from hil.cluster.health import FRESH, health_gate
from hil.cluster.retry import with_retries
from hil.errors import HilError, UsageError
from hil.session.folders import run_folder

if TYPE_CHECKING:
    from distributed import Security

    from hil.cluster.dispatch import Lab
    from hil.results import BenchResult

CANCEL_GRACE_S = 10.0  # after Ctrl-C or SIGTERM, how long a rig's run has to reach a cancel check


@dataclass
class LabOptions:
    scheduler: str | None = None  # tcp://HOST:8786 (or tls://); None: run here
    wait: float | None = None  # seconds to wait for a leased rig (here); None: fail at once
    retries: int = 0
    force: bool = False  # run on an unhealthy rig
    fetch_artifacts: bool = False
    command: str = "hil run"  # shown to whoever finds the rig leased
    health_fresh_s: float = FRESH.total_seconds()
    security: Security | None = None  # for tls:// schedulers (None: from dask config)


@dataclass
class LabRun:
    """The suite's result on each rig that ran it (in the order of the rigs), and the error that
    kept each other rig from running it (busy, unhealthy, unreachable...)."""

    results: list[SuiteResult]
    errors: dict[str, HilError]


def run_lab(suite: str | Path, rigs: list[str], options: SuiteOptions, lab: LabOptions,
            warn: Callable[[str], None] | None = None) -> LabRun:
    """Run ``suite`` on every rig in ``rigs``. With one rig its error is raised; with several, a
    rig's error does not cost the other rigs their results."""
    if len(set(rigs)) != len(rigs):
        raise UsageError(f"a rig is given twice: {', '.join(rigs)}")
    labels = [_label(r) for r in rigs]
    if len(set(labels)) != len(labels):  # each rig's results go into OUT/LABEL
        raise UsageError("two rigs would share a results folder: " + ", ".join(
            f"{r} → {label}/" for r, label in zip(rigs, labels) if labels.count(label) > 1)
            + "; give the rig files different names")
    started = datetime.now(UTC)
    out = run_folder(_suite_name(suite), options.out, started)
    client = _connect(lab) if lab.scheduler else None
    try:
        if client is not None:
            client.require([r for r in rigs if not Path(r).is_file()])
        jobs = [_RigJob(r, suite, replace(options, out=out if len(rigs) == 1 else out / _label(r)), lab,
                        client, warn) for r in rigs]
        if len(jobs) == 1:
            return LabRun([jobs[0].run()], {})
        _run_side_by_side(jobs)
        for job in jobs:
            if job.exception is not None and not isinstance(job.exception, HilError):
                raise job.exception  # a bug or an interrupt ends the command as before
        run = LabRun([job.result for job in jobs if job.result is not None],
                     {job.label: job.exception for job in jobs if isinstance(job.exception, HilError)})  # others: raised
        from hil.cluster.report import write_side_by_side

        write_side_by_side(_suite_name(suite), run.results, out, run.errors)
        return run
    finally:
        if client is not None:
            client.close()


def _run_side_by_side(jobs: list[_RigJob]) -> None:
    """Run the rigs' jobs in threads. Signals reach only the main thread, so Ctrl-C and SIGTERM
    cancel every rig's run, and their teardowns run before we leave (:func:`hil.cancel.cancel_all`:
    a rig that reaches no cancel check within ``CANCEL_GRACE_S`` gets the stop forced).

    The main thread waits on each job's ``done`` event, not on ``Thread.join``: a join interrupted
    by a signal marks a live thread as finished (CPython bpo-45274), and then nobody waits for it."""
    from hil import cancel

    try:
        for job in jobs:
            job.thread.start()
        for job in jobs:
            while not job.done.wait(0.2):  # back in Python now and then: a signal that reached
                pass  # another thread has its handler run only when the main thread runs bytecode
    except BaseException:
        cancel.cancel_all([(job.thread, job.cancel, job.done) for job in jobs if job.thread.ident is not None],
                          CANCEL_GRACE_S)
        raise


class _RigJob:
    """One rig's share of the run."""

    def __init__(self, rig: str, suite: str | Path, options: SuiteOptions, lab: LabOptions, client: Lab | None,
                 warn: Callable[[str], None] | None):
        self.rig, self.suite, self.options, self.lab, self.client, self.warn = rig, suite, options, lab, client, warn
        self.label = _label(rig)
        self.result: SuiteResult | None = None
        self.exception: BaseException | None = None
        self.thread = threading.Thread(target=self.run_caught, name=f"hil-rig-{self.label}")
        self.done = threading.Event()
        self.cancel = threading.Event()

    def run_caught(self) -> None:
        from hil import cancel

        try:
            with cancel.cancelled_by(self.cancel):
                self.run()
        except BaseException as exc:  # re-raised by run_lab in the main thread
            self.exception = exc
        finally:
            self.done.set()

    def run(self) -> SuiteResult:
        from hil.spec import load_rig

        rig_path, runner = self._rig_and_runner()
        rig = load_rig(rig_path).model
        options = replace(self.options, run_bench=with_retries(runner, self.lab.retries, self._retrying))
        with self._lease(rig.name):
            health_gate(rig_path, rig, replace(options, out=Path(options.out) / "health"), force=self.lab.force,
                        fresh=_seconds(self.lab.health_fresh_s), warn=self.warn)
            self.result = run_suite(rig_path, self.suite, options)
        return self.result

    def _rig_and_runner(self) -> tuple[Path, Callable[..., Any]]:
        if self.client is None:
            if not Path(self.rig).is_file():
                raise UsageError(f"rig file {self.rig!r} not found (a rig name needs --scheduler)")
            return Path(self.rig), self.options.run_bench
        name = self.rig
        if Path(self.rig).is_file():  # a local copy of the rig file: the worker's own is used to run
            from hil.spec import load_rig

            name = load_rig(self.rig).model.name
        path = self.client.fetch_rig(name, Path(self.options.out) / "rig")
        return path, self.client.bench_runner(name, fetch_artifacts=self.lab.fetch_artifacts)

    def _lease(self, rig: str) -> contextlib.AbstractContextManager:
        if self.client is not None:
            return contextlib.nullcontext()  # the worker leases the rig for each bench
        from hil.bench.lease import Lease

        return Lease(rig, wait=self.lab.wait, command=self.lab.command, on_wait=self.warn)

    def _retrying(self, result: BenchResult, attempt: int) -> None:
        if self.warn is not None:
            self.warn(f"{result.key} on {result.rig or self.label}: error ({result.error}); "
                      f"retry {attempt} of {self.lab.retries}")


def _connect(lab: LabOptions) -> Lab:
    from hil.cluster.dispatch import Lab

    assert lab.scheduler is not None  # connected only to run on a scheduler
    return Lab(lab.scheduler, security=lab.security)


def _label(rig: str) -> str:
    """A rig argument as a folder name: the file's stem, or the name itself."""
    return Path(rig).stem if rig.endswith((".yaml", ".yml")) else rig


def _suite_name(suite: str | Path) -> str:
    from hil.spec import load_suite

    return load_suite(suite).model.name


def _seconds(s: float):
    from datetime import timedelta

    return timedelta(seconds=s)
