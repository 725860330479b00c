"""Whole-setup validation: a rig, its suites, and the stacks those suites deploy, checked against
each other. Structural problems of every file are collected before anything is raised; references
between files are checked once each file is structurally valid."""

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
    try:
        rig = load_rig(rig_path)
    except SpecError as exc:  # the other files are still read, only not checked against the rig
        rig, problems = None, list(exc.problems)
    suites: list[SpecFile[Suite]] = []
    loaded: dict[Path, SpecFile[Stack]] = {}
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
        suites.append(suite)
        problems += _cross(suite, rig)
        stacks += _stack_paths(suite.model)
    for stack_path in dict.fromkeys(stacks):
        try:
            stack = load_stack(stack_path)
        except SpecError as exc:
            problems += exc.problems
            continue
        loaded[stack_path] = stack
        problems += _cross(stack, rig)
    if problems:
        raise SpecError(problems)
    return Checked(rig, suites, loaded)


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


def _cross(spec: SpecFile, rig: SpecFile[Rig] | None) -> list[str]:
    problems = spec.model.problems_on(rig.model) if rig is not None else []
    return spec.error(problems).problems if problems else []


def _stack_paths(suite: Suite) -> list[Path]:
    return [p for p in (b.stack or suite.defaults.stack for b in suite.benches) if p is not None]
