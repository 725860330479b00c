"""Rig health: a rig may name a health suite (``health:`` in the rig file) whose first bench checks
that the rig itself works. Its runs are ordinary runs in the history, so the history says whether
a rig is healthy: the latest run of its health suite on it passed, or not.

Before a run, :func:`health_gate` skips the check when a passing one is recent enough, refuses a rig
whose latest check failed (unless forced), and otherwise runs the check — a failing check refuses
the run too, until a health check passes again (``hil rig health RIG``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import TYPE_CHECKING

from hil.errors import RigUnhealthyError
from hil.spec.rig import Rig
from hil.values import Verdict

if TYPE_CHECKING:
    from hil.bench import SuiteOptions

#: A passing health check younger than this is trusted; older ones are checked again.
FRESH = timedelta(hours=1)


@dataclass(frozen=True)
class RigHealth:
    """What the history says about a rig: ``healthy``, ``unhealthy`` or ``unknown`` (never checked,
    or the rig names no health suite)."""

    rig: str
    state: str
    suite: str | None = None  # the health suite's name
    checked_utc: str | None = None
    run_id: str | None = None
    run_dir: str | None = None

    def fresh(self, now: datetime | None = None, fresh: timedelta = FRESH) -> bool:
        if self.state != "healthy" or self.checked_utc is None:
            return False
        return (now or datetime.now(UTC)) - datetime.fromisoformat(self.checked_utc) < fresh

    def describe(self) -> str:
        if self.state == "unknown":
            return "no health suite" if self.suite is None else "never checked"
        return f"{self.state} (health check {self.suite} at {self.checked_utc}, run {self.run_id})"


def health_suite(rig: Rig) -> tuple[str, str] | None:
    """The rig's health suite as (suite name, first bench name), or None when it names none."""
    if rig.health is None:
        return None
    from hil.spec import load_suite

    suite = load_suite(rig.health).model
    return suite.name, suite.benches[0].name


def rig_health(rig: Rig, history: Path | None = None) -> RigHealth:
    """The rig's health according to the history (``None``: the default history database)."""
    found = health_suite(rig)
    if found is None:
        return RigHealth(rig.name, "unknown")
    from hil.report.history import History

    with History(history) as h:
        runs = h.runs(suite=found[0], rig=rig.name, last=1)
    if not runs:
        return RigHealth(rig.name, "unknown", found[0])
    last = runs[0]
    return RigHealth(rig.name, "healthy" if last["verdict"] == Verdict.PASS else "unhealthy", found[0],
                     last["started_utc"], last["id"], last["run_dir"])


def check_health(rig_path: str | Path, rig: Rig, options: SuiteOptions) -> RigHealth:
    """Run the rig's health bench now (``options``: SuiteOptions for it; it is recorded in the
    history) and return the health it leaves behind."""
    from dataclasses import replace

    from hil.bench import run_suite

    suite, bench = health_suite(rig) or (None, None)
    if suite is None:
        return RigHealth(rig.name, "unknown")
    # the health suite deploys its own stacks: --stack replaces only those of the suite under test
    result = run_suite(rig_path, rig.health, replace(options, benches=[bench], repeat=1, record_history=True, stacks={}))
    return RigHealth(rig.name, "healthy" if result.verdict == Verdict.PASS else "unhealthy", suite,
                     result.started_utc, result.run_id, result.run_dir)


def health_gate(rig_path: str | Path, rig: Rig, options: SuiteOptions, *, force: bool = False,
                fresh: timedelta = FRESH, warn: Callable[[str], None] | None = None) -> RigHealth:
    """Decide whether a run may use the rig; run its health check when needed.

    ``options`` are the SuiteOptions the health check runs with (its ``out`` is its run folder).
    Raises :class:`RigUnhealthyError` for an unhealthy rig, unless ``force``.
    """
    health = rig_health(rig, options.history)
    if health.suite is None or health.fresh(fresh=fresh):
        return health
    if health.state != "unhealthy":
        health = check_health(rig_path, rig, options)
    if health.state == "unhealthy":
        message = (f"rig {rig.name!r} is unhealthy: its health check {health.suite!r} failed at "
                   f"{health.checked_utc} (run {health.run_id}, {health.run_dir})")
        if not force:
            raise RigUnhealthyError(f"{message}; repair it and run 'hil rig health' until it passes, "
                                    f"or use --force")
        if warn is not None:
            warn(f"{message}; running anyway (--force)")
    return health
