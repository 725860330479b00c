"""The target contract: what every target driver (``hil.target``) must do, whatever it drives.

Subclass :class:`TargetContract` in a pytest module and define a fixture ``target_case`` that
returns a :class:`TargetCase`: a way to build a fresh driver (as :func:`hil.targets.create_target`
builds it) with the stack components mapped to it, whose components become ready on their own and
print ``ready_line`` on a console. The tests run the real driver through its life cycle: states in
order, a step out of order named, console lines kept and passed on, stop safe in every state and
any number of times, a stopped target deployable again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from hil.errors import TargetStateError
from hil.targets.base import State, Target
from hil.targets.console import ConsoleLine


@dataclass
class TargetCase:
    """``make(on_console)`` builds a fresh driver; ``components`` is what it deploys (name →
    component); ``ready_line`` a regex one of them prints once it runs."""

    make: Callable[[Callable[[ConsoleLine], None]], Target]
    components: Mapping[str, Any]
    ready_line: str = "ready"

    def build(self) -> tuple[Target, list[ConsoleLine]]:
        lines: list[ConsoleLine] = []
        return self.make(lines.append), lines


class TargetContract:
    """The tests; a subclass provides the ``target_case`` fixture."""

    def test_life_cycle_moves_through_its_states(self, target_case: TargetCase) -> None:
        target, _ = target_case.build()
        assert target.state is State.IDLE
        try:
            target.deploy(target_case.components)
            assert target.state is State.DEPLOYED
            target.start()
            assert target.state is State.RUNNING
            target.wait_ready()
            assert target.state is State.READY
            target.check_alive()
        finally:
            target.stop()
        assert target.state is State.STOPPED

    def test_a_step_out_of_order_names_the_state(self, target_case: TargetCase) -> None:
        target, _ = target_case.build()
        try:
            with pytest.raises(TargetStateError, match=r"cannot start while idle; expected deployed"):
                target.start()
            with pytest.raises(TargetStateError, match=r"cannot wait_ready while idle"):
                target.wait_ready()
        finally:
            target.stop()

    def test_console_lines_are_kept_and_passed_on(self, target_case: TargetCase) -> None:
        target, lines = target_case.build()
        try:
            target.deploy(target_case.components)
            target.start()
            target.wait_ready()
        finally:
            target.stop()
        pattern = re.compile(target_case.ready_line)
        passed = [line for line in lines if pattern.search(line.text)]
        assert passed, f"no console line matching {target_case.ready_line!r} among {[l.text for l in lines]}"
        assert all(line.t_ns > 0 and line.source for line in passed)
        kept = target.log.tail(passed[0].source)
        assert any(pattern.search(line.text) for line in kept), [line.text for line in kept]

    def test_stop_is_safe_in_every_state_and_twice(self, target_case: TargetCase) -> None:
        target, _ = target_case.build()
        target.stop()
        assert target.state is State.IDLE
        try:
            target.deploy(target_case.components)
        finally:
            target.stop()
            target.stop()
        assert target.state is State.STOPPED

    def test_a_stopped_target_deploys_and_runs_again(self, target_case: TargetCase) -> None:
        target, _ = target_case.build()
        try:
            for _ in range(2):
                target.deploy(target_case.components)
                target.start()
                target.wait_ready()
                assert target.state is State.READY
                target.stop()
                assert target.state is State.STOPPED
        finally:
            target.stop()
