"""Every malformed file under files/bad/ is refused by `hil check` with exit 2, no traceback, and
exactly the expected first message line (file:line:col: field: message).

Each file's first comment says what it tries and what happened before it was refused (the corpus
grows with every refusal; a "regression guard" was refused before too). In expected.txt, {files}
stands for tests/spec/files and {root} for the repository, both absolute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hil.cli import cli
from hil.cli.app import run_guarded

FILES = Path(__file__).parent / "files"
ROOT = Path(__file__).parents[2]
GOOD_RIG = FILES / "good" / "rig.yaml"
EXPECTED = dict(
    line.replace("{files}", str(FILES)).replace("{root}", str(ROOT)).split("\t", 1)
    for line in (FILES / "bad" / "expected.txt").read_text().splitlines() if line
)


def check(capsys, *paths: Path) -> tuple[int, list[str]]:
    code = run_guarded(cli, ["check", *map(str, paths)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.splitlines()


def test_every_bad_file_has_an_expectation():
    on_disk = {p.name for p in (FILES / "bad").glob("*.yaml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 110


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_refused_with_its_position(capsys, name):
    path = FILES / "bad" / name
    args = (GOOD_RIG, path) if name.startswith(("suite-", "stack-")) else (path,)
    code, lines = check(capsys, *args)
    assert code == 2
    assert lines[0] == f"error: {path}:{EXPECTED[name]}"


def test_all_problems_in_a_file_are_reported_at_once(tmp_path, capsys):
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\nbuses:\n  a: {kind: can, emulated: true, bitrate: 9}\n"
                   "  b: {kind: can, emulated: true, colour: red}\nextra: 1\n")
    code, lines = check(capsys, rig)
    assert code == 2
    assert [line.split(": ", 3)[1:3] for line in lines] == [
        [f"{rig}:3:43", "buses.a.bitrate"], [f"{rig}:4:34", "buses.b.colour"], [f"{rig}:5:1", "extra"]]


def test_ten_megabyte_file_is_refused_without_parsing(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("name: r\n" + "# padding\n" * 1_100_000)
    code, lines = check(capsys, big)
    assert code == 2
    assert lines[0] == f"error: {big}:1:1: spec file {big} is 10.5 MiB; at most 1.0 MiB is accepted"


def test_recursive_alias_is_refused(tmp_path, capsys):
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\nbuses: &b\n  can1: {kind: can, emulated: true}\n  loop: *b\n")
    code, lines = check(capsys, rig)
    assert code == 2
    assert "recursive alias" in lines[0] or "expected" in lines[0]


def test_deep_nesting_is_refused(tmp_path, capsys):
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\ntags: " + "[" * 5000 + "]" * 5000 + "\n")
    code, lines = check(capsys, rig)
    assert code == 2
    assert "nesting is deeper than" in lines[0]


def test_missing_file_is_a_spec_error(tmp_path, capsys):
    code, lines = check(capsys, tmp_path / "nope.yaml")
    assert code == 2
    assert lines[0] == f"error: {tmp_path / 'nope.yaml'}:1:1: spec file {tmp_path / 'nope.yaml'} does not exist"


def test_problems_across_suite_and_stack_are_all_listed(capsys):
    bad = FILES / "bad"
    code, lines = check(capsys, GOOD_RIG, bad / "suite-unknown-bus.yaml", bad / "stack-unknown-target.yaml")
    assert code == 2
    assert len(lines) == 2
    assert "suite-unknown-bus.yaml:8:19:" in lines[0] and "stack-unknown-target.yaml:6:13:" in lines[1]


def test_a_broken_rig_does_not_hide_the_suites_own_problems(capsys):
    bad = FILES / "bad"
    code, lines = check(capsys, bad / "rig-unknown-key.yaml", bad / "suite-duplicate-bench.yaml")
    assert code == 2
    assert [Path(line.split(":")[1].strip()).name for line in lines] == [
        "rig-unknown-key.yaml", "suite-duplicate-bench.yaml"], lines


def test_a_fifo_is_refused_instead_of_blocking(capsys, tmp_path):
    fifo = tmp_path / "rig.yaml"
    os.mkfifo(fifo)
    code, lines = check(capsys, fifo)
    assert (code, lines) == (2, [f"error: {fifo}:1:1: spec file {fifo} is not a regular file (a FIFO)"])
