"""Whole-setup validation: a rig, its suites, and the stacks those suites deploy, checked against
each other. Every problem in every file is collected before anything is raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hil.errors import SpecError
from hil.spec.load import SpecFile, load_rig, load_stack, load_suite
from hil.spec.rig import Rig
from hil.spec.stack import Stack
from hil.spec.suite import Suite


@dataclass
class Checked:
    rig: SpecFile[Rig]
    suites: list[SpecFile[Suite]] = field(default_factory=list)
    stacks: dict[Path, SpecFile[Stack]] = field(default_factory=dict)


def check_files(rig_path: str | Path, suite_paths: list[str | Path] = ()) -> Checked:
    """Load ``rig_path`` and every suite (and the stacks they name); raise one SpecError for all."""
    problems: list[str] = []
    rig = load_rig(rig_path)  # nothing else can be checked without the rig
    checked = Checked(rig)
    for path in suite_paths:
        try:
            suite = load_suite(path)
        except SpecError as exc:
            problems += exc.problems
            continue
        checked.suites.append(suite)
        cross = suite.model.problems_on(rig.model)
        if cross:
            problems += suite.error(cross).problems
        for stack_path in _stack_paths(suite.model):
            if stack_path in checked.stacks:
                continue
            try:
                stack = load_stack(stack_path)
            except SpecError as exc:
                problems += exc.problems
                continue
            checked.stacks[stack_path] = stack
            cross = stack.model.problems_on(rig.model)
            if cross:
                problems += stack.error(cross).problems
    if problems:
        raise SpecError(problems)
    return checked


def _stack_paths(suite: Suite) -> list[Path]:
    paths = [b.stack or suite.defaults.stack for b in suite.benches]
    return list(dict.fromkeys(p for p in paths if p is not None))
