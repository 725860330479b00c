"""The lab options of ``hil run`` (leases, scheduler, retries, health) and the part of the command
that runs the suite on its rigs and shows the results — one table per rig, then side by side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hil.cli.app import App, lease_wait_option

if TYPE_CHECKING:
    from hil.bench import SuiteOptions

MAX_RETRIES = 100

_OPTIONS = [
    lease_wait_option,
    click.option("--scheduler", envvar="HIL_SCHEDULER", metavar="tcp://HOST:8786",
                 help="Run each bench on the lab host that owns its rig, through this Dask scheduler "
                      "(also HIL_SCHEDULER); tls://... for TLS (settings from dask config)."),
    click.option("--fetch-artifacts", is_flag=True,
                 help="With --scheduler: copy each bench's folder (recording, consoles) back here."),
    click.option("--retries", type=click.IntRange(min=0, max=MAX_RETRIES), default=0, show_default=True, metavar="N",
                 help="Run a bench again, up to N times, when its verdict is error (infrastructure); "
                      "one that then passes is reported flaky."),
    click.option("--force", is_flag=True, help="Run on a rig whose last health check failed."),
    click.option("--health-fresh", default="1h", show_default=True, metavar="DURATION",
                 help="Trust a passing health check younger than this instead of checking again "
                      "(0 checks before every run)."),
]


def lab_options(command: Callable) -> Callable:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def run_on_rigs(app: App, suite: str, rigs: list[str], options: SuiteOptions, lab: dict[str, Any]) -> int:
    """Run ``suite`` on ``rigs`` with the lab options; print the summaries; return the exit code."""
    from hil.cluster.lab import LabOptions, run_lab
    from hil.errors import UsageError
    from hil.report.console import summary

    if lab["fetch_artifacts"] and not lab["scheduler"]:
        raise UsageError("--fetch-artifacts needs --scheduler: without one the artifacts are here already")
    if lab["lease_wait"] is not None and lab["scheduler"]:
        app.warn("--wait has no effect with --scheduler: the workers lease the rigs (see their --lease-wait)")
    _check_rig_names(rigs)
    command = f"hil run {suite} " + " ".join(f"--rig {r}" for r in rigs)
    run = run_lab(suite, rigs, options, LabOptions(
        scheduler=lab["scheduler"], wait=lab["lease_wait"], retries=lab["retries"], force=lab["force"],
        fetch_artifacts=lab["fetch_artifacts"], command=command,
        health_fresh_s=_duration_s(lab["health_fresh"], "--health-fresh")), warn=app.warn)
    for result in run.results:
        app.print(summary(result), level=-1)
    if len(run.results) > 1:
        from hil.cluster.report import side_by_side

        app.print(side_by_side(run.results), level=-1)
    for rig, exc in run.errors.items():
        for problem in exc.lines():
            app.error(f"rig {rig}: {problem}")
    codes = [r.exit_code for r in run.results] + [exc.exit_code for exc in run.errors.values()]
    return max(codes, key=lambda code: (code == 3, code))


def _check_rig_names(rigs: list[str]) -> None:
    """With several rigs, each one's results go into OUT/NAME, NAME being the rig file's stem (or,
    with --scheduler, the rig's name): it must be a name, or a rig file called '...yaml' would write
    into OUT/.. and '--rig ../x' outside OUT."""
    import re

    from hil.errors import UsageError
    from hil.spec.common import NAME_RE

    names = {r: Path(r).stem if r.endswith((".yaml", ".yml")) else r for r in rigs}
    bad = [r for r, name in names.items() if not re.fullmatch(NAME_RE, name)] if len(rigs) > 1 else []
    if bad:
        raise UsageError(f"--rig {bad[0]!r}: with several rigs each names its results folder, so a rig file's "
                         "name (or a rig name) must be a name: letter first, then letters, digits, _ . -")


def _duration_s(value: str, option: str) -> float:
    from hil.spec.common import parse_duration_ns

    try:
        return parse_duration_ns(value) / 1e9
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
