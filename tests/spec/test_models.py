"""Spec building blocks: durations, CAN ids, relative paths, cross-file checks."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from hil.errors import SpecError
from hil.spec import check_files, load_stack, load_suite
from hil.spec.common import format_duration, parse_duration_ns

FILES = Path(__file__).parent / "files"


@pytest.mark.parametrize("text,ns", [
    ("250ms", 250_000_000), ("1.5 s", 1_500_000_000), ("200us", 200_000), ("200µs", 200_000),
    ("10ns", 10), ("2min", 120_000_000_000), (30, 30_000_000_000), (0.001, 1_000_000), ("1h", 3_600 * 10**9),
    ("30", 30_000_000_000), ("0", 0),  # on the command line a plain number is seconds too
])
def test_durations(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["10 parsecs", "-1s", -1, True, "", "ms"])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration_ns(bad)


def test_duration_formatting_round_trips():
    for ns in (1, 1_000, 250_000_000, 3 * 10**9, 120 * 10**9):
        assert parse_duration_ns(format_duration(ns)) == ns


def test_relative_paths_resolve_against_the_spec_file():
    suite = load_suite(FILES / "good" / "suite.yaml").model
    assert suite.defaults.stack == (FILES / "good" / "stack.yaml").resolve()
    stack = load_stack(FILES / "good" / "stack.yaml").model
    assert stack.components["brake"].image == (FILES.parents[2] / "firmware_stubs" / "brake_ecu").resolve()


def test_check_files_loads_suites_and_their_stacks():
    checked = check_files(FILES / "good" / "rig.yaml", [FILES / "good" / "suite.yaml"])
    assert [s.model.name for s in checked.suites] == ["test-suite"]
    assert [s.model.name for s in checked.stacks.values()] == ["test-stack"]
    probe = checked.suites[0].model.benches[0].probes[0]
    assert (probe.from_.id, probe.to.id, probe.modulo) == (0x100, 0x200, 256)


def test_models_are_frozen():
    suite = load_suite(FILES / "good" / "suite.yaml").model
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        suite.name = "other"


def test_spec_error_lists_each_problem():
    with pytest.raises(SpecError) as info:
        check_files(FILES / "good" / "rig.yaml", [FILES / "bad" / "suite-unknown-bus.yaml",
                                                  FILES / "bad" / "suite-duplicate-bench.yaml"])
    assert len(info.value.problems) == 2
    assert str(info.value) == "\n".join(info.value.problems)


def test_bench_faults_need_an_emulated_can_bus(tmp_path):
    """Arming a fault on a real bus failed after bring-up; the rig tells it before."""
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\nbuses:\n  can0: {kind: can, interface: socketcan, channel: can0}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: s\ndefaults: {{stack: {FILES / 'good' / 'stack.yaml'}}}\nbenches:\n"
                     "  - {name: b, faults: {can0: [{kind: drop}]}}\n")
    with pytest.raises(SpecError) as info:
        check_files(rig, [suite])
    assert info.value.problems[0] == (f"{suite}:4:24: benches[0].faults.can0: faults can only be injected on "
                                      "emulated buses; 'can0' is socketcan:can0")
