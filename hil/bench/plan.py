"""Everything a bench needs decided before it touches a rig: the checked rig, suite and stack, the
bench's DBC database, and every problem found up front as a SpecError with file:line:col."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hil.analysis import Database, check_bench
from hil.errors import AnalysisError, DeployError, SpecError, UsageError
from hil.spec import check_files
from hil.spec.load import SpecFile
from hil.spec.rig import Rig
from hil.spec.stack import FirmwareComponent, FrameReady, Stack
from hil.spec.suite import Bench, HarnessBudget, Suite


@dataclass(frozen=True)
class BenchPlan:
    rig_file: SpecFile[Rig]
    suite_file: SpecFile[Suite]
    bench: Bench
    stack: Stack | None
    db: Database

    @property
    def rig(self) -> Rig:
        return self.rig_file.model

    @property
    def suite(self) -> Suite:
        return self.suite_file.model

    @property
    def settle_ns(self) -> int:
        return self.bench.settle if self.bench.settle is not None else self.suite.defaults.settle

    @property
    def timeout_ns(self) -> int:
        return self.bench.timeout if self.bench.timeout is not None else self.suite.defaults.timeout

    @property
    def power_cycle(self) -> bool:
        return self.bench.power_cycle if self.bench.power_cycle is not None else self.suite.defaults.power_cycle

    @property
    def harness_budget(self) -> HarnessBudget:
        return self.suite.harness_budget(self.bench)

    @property
    def deployed_stack(self) -> Stack:
        """The stack as this bench deploys it: its ``config`` merged into the components' config."""
        stack, overrides = self.stack, self.bench.config
        assert stack is not None  # the suite check gives every bench a stack
        components = {name: comp.model_copy(update={"config": {**comp.config, **overrides[name]}})
                      if name in overrides else comp for name, comp in stack.components.items()}
        return stack.model_copy(update={"components": components})


def plan_suite(rig_path: str | Path, suite_path: str | Path, benches: list[str] | None = None,
               stacks: Mapping[str, str] | None = None) -> list[BenchPlan]:
    """Load and cross-check rig, suite and stacks; plan the selected benches (all when None), with
    the suite's stacks replaced as ``stacks`` says (OLD → NEW, ``hil run --stack``)."""
    checked = check_files(rig_path, [suite_path], stacks)
    suite_file = checked.suites[0]
    suite = suite_file.model
    known = [b.name for b in suite.benches]
    unknown = [n for n in benches or [] if n not in known]
    if unknown:
        raise UsageError(f"suite {suite.name!r} has no bench {', '.join(map(repr, unknown))}; "
                         f"it has: {', '.join(known)}")
    plans: list[BenchPlan] = []
    problems: list[tuple[tuple, str]] = []
    deployed: dict[Path, SpecFile[Stack]] = {}
    for i, bench in enumerate(suite.benches):
        if benches is not None and bench.name not in benches:
            continue
        stack_path = bench.stack or suite.defaults.stack
        stack = checked.stacks[stack_path].model if stack_path is not None else None
        if stack_path is not None:
            deployed[stack_path] = checked.stacks[stack_path]
        db, found = bench_database(suite, i)
        problems += found
        plans.append(BenchPlan(checked.rig, suite_file, bench, stack, db))
    lines = [line for stack in deployed.values() for line in stack_problems(stack, checked.rig.model)]
    if problems or lines:
        raise SpecError(lines + (suite_file.error(problems).problems if problems else []))
    return plans


def stack_problems(stack_file: SpecFile[Stack], rig: Rig) -> list[str]:
    """What deploying the stack on ``rig`` would refuse that its files already tell: a firmware
    image that cannot be built or read, whose version is not the stack's, or that is a board's raw
    .bin for an emulated MCU; a frame ready condition naming what its DBC lacks."""
    from hil.firmware.build import MANIFEST
    from hil.targets.mcu import checked_image, emulated_image_problem
    from hil.targets.ready import FrameCheck

    lines: list[str] = []
    found: list[tuple[tuple, str]] = []
    for name, comp in stack_file.model.components.items():
        loc = ("components", name)
        if isinstance(comp, FirmwareComponent) and comp.image.is_dir() and not (comp.image / MANIFEST).is_file():
            found.append(((*loc, "image"), f"firmware folder {comp.image} has no {MANIFEST}: expected a stub folder "
                                           "(firmware_stubs/NAME), a .hilfw image or a board's raw .bin"))
        elif isinstance(comp, FirmwareComponent):
            try:
                image = checked_image(comp.target, name, comp)
            except SpecError as exc:  # the stub folder's firmware.yaml, at its own positions
                lines += exc.problems
            except DeployError as exc:
                found.append(((*loc, "image"), str(exc)))
            else:
                why = emulated_image_problem(image, comp.image.name)
                if why is not None and getattr(rig.targets.get(comp.target), "emulated", False):
                    found.append(((*loc, "image"), f"target {comp.target!r} is an emulated MCU: {why}"))
        if isinstance(comp.ready, FrameReady) and comp.ready.dbc is not None:
            try:
                FrameCheck(comp.ready, None)
            except DeployError as exc:
                found.append(((*loc, "ready"), str(exc)))
    return lines + (stack_file.error(found).problems if found else [])


def bench_database(suite: Suite, index: int) -> tuple[Database, list[tuple[tuple, str]]]:
    """The DBC database of bench ``index`` (suite defaults, bench, stimulus) and the bench's DBC and
    unit problems, located in the suite file."""
    bench = suite.benches[index]
    located: list[tuple[tuple, Path]] = [(("defaults", "dbc", k), p) for k, p in enumerate(suite.defaults.dbc)]
    located += [(("benches", index, "dbc", k), p) for k, p in enumerate(bench.dbc)]
    if bench.stimulus:
        located += [(("benches", index, "stimulus", "dbc", k), p) for k, p in enumerate(bench.stimulus.dbc)]
    db, problems, seen = Database(), [], set()
    for loc, path in located:
        if path not in seen:
            seen.add(path)
            try:
                db.add(path)
            except AnalysisError as exc:
                problems.append((loc, str(exc)))
    if problems:  # names cannot be checked against a DBC that is not there
        return db, problems
    return db, [(("benches", index, *loc), msg) for loc, msg in check_bench(bench, db)]


def plan_bench(rig_path: str | Path, suite_path: str | Path, bench: str,
               stacks: Mapping[str, str] | None = None) -> BenchPlan:
    return plan_suite(rig_path, suite_path, [bench], stacks)[0]
