"""Whole-setup validation: a rig, its suites, and the stacks those suites deploy, checked against
each other. Every problem in every file is collected before anything is raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hil.errors import SpecError
from hil.spec.load import SpecFile, load_rig, load_stack, load_suite, parse_yaml
from hil.spec.rig import Rig
from hil.spec.stack import Stack
from hil.spec.suite import Suite


@dataclass
class Checked:
    rig: SpecFile[Rig]
    suites: list[SpecFile[Suite]] = field(default_factory=list)
    stacks: dict[Path, SpecFile[Stack]] = field(default_factory=dict)


def check_files(rig_path: str | Path, paths: list[str | Path] = ()) -> Checked:
    """Load ``rig_path``, then every suite or stack in ``paths`` (a file with ``components`` is a
    stack) and the stacks the suites name; raise one SpecError listing every problem."""
    problems: list[str] = []
    rig = load_rig(rig_path)  # nothing else can be checked without the rig
    checked = Checked(rig)
    stacks: list[Path] = []
    for path in paths:
        if is_stack_file(Path(path)):
            stacks.append(Path(path))
            continue
        try:
            suite = load_suite(path)
        except SpecError as exc:
            problems += exc.problems
            continue
        checked.suites.append(suite)
        problems += _cross(suite, rig.model)
        stacks += _stack_paths(suite.model)
    for stack_path in dict.fromkeys(stacks):
        try:
            stack = load_stack(stack_path)
        except SpecError as exc:
            problems += exc.problems
            continue
        checked.stacks[stack_path] = stack
        problems += _cross(stack, rig.model)
    if problems:
        raise SpecError(problems)
    return checked


def is_stack_file(path: Path) -> bool:
    """A spec file whose top level has ``components`` is a stack; anything else is read as a suite."""
    return "components" in _top_keys(path)


def is_rig_file(path: Path) -> bool:
    """A spec file whose top level has ``buses`` is a rig."""
    return "buses" in _top_keys(path)


def _top_keys(path: Path) -> set[str]:
    try:
        doc = parse_yaml(path)
    except SpecError:
        return set()  # let the loader that reads it report it
    return set(doc) if isinstance(doc, dict) else set()


def _cross(spec: SpecFile, rig: Rig) -> list[str]:
    problems = spec.model.problems_on(rig)
    return spec.error(problems).problems if problems else []


def _stack_paths(suite: Suite) -> list[Path]:
    return [p for p in (b.stack or suite.defaults.stack for b in suite.benches) if p is not None]
