"""What reaches the terminal: control characters from specs, files and processes are shown as
escapes (hil's own colours stay), text is never read as markup, and numeric options are bounded —
run as real processes where the terminal bytes matter."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import cli
from hil.cli.app import App, run_guarded
from tests.hilcli import hil as run_hil

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "spec" / "files" / "good"
TITLE_AND_CLEAR = "\x1b]0;owned\x07\x1b[2J"


def hil(*args: str, cwd: Path = ROOT, env: dict | None = None, prelude: str = "") -> subprocess.CompletedProcess:
    """``hil ARGS`` run as ``python -c``, after ``prelude`` (code that changes the process first)."""
    return run_hil(*args, cwd=cwd, env=env, command=(sys.executable, "-c", f"{prelude}from hil.cli import main; main()"))


def test_escape_sequences_in_a_message_are_shown_not_obeyed_and_colours_stay(tmp_path):
    """A file name is quoted by the error; its escape sequences set the title and cleared the
    screen. Now every control character arrives escaped, while hil's red 'error:' stays."""
    bad = tmp_path / f"rig{TITLE_AND_CLEAR}.yaml"
    bad.write_text("name: r\n")
    r = hil("check", str(bad), env={"FORCE_COLOR": "1"})
    assert r.returncode == 2
    assert "\x1b[31merror:" in r.stderr or "\x1b[31m" in r.stderr  # hil's colour is kept
    assert "\x1b]" not in r.stderr and "\x07" not in r.stderr and "\x1b[2J" not in r.stderr
    assert "rig\\x1b]0;owned\\x07\\x1b[2J.yaml:1:1: (top): missing required key 'buses'" in r.stderr


def test_a_command_line_is_quoted_escaped_in_usage_errors():
    """Regression guard: click quoted the name with repr() before; it must stay escaped."""
    r = hil(f"frob{TITLE_AND_CLEAR}")
    assert r.returncode == 2
    assert "No such command 'frob\\x1b]0;owned\\x07\\x1b[2J'" in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


def test_text_with_brackets_is_printed_as_written(tmp_path):
    """A description "bench [lab B]" lost "[lab B]" (read as a style), and "[/]" ended hil check
    with an internal error."""
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\ndescription: 'bench 3 [lab B] [/] [link=http://x.test]here[/link]'\n"
                   "buses:\n  '[bold]': {kind: can, interface: socketcan, channel: '[red]can0[/]'}\n".replace(
                       "'[bold]'", "can0"))
    r = hil("check", str(rig), env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    assert "rig r — bench 3 [lab B] [/] [link=http://x.test]here[/link]" in r.stdout
    assert "socketcan:[red]can0[/]" in r.stdout


def test_every_console_shows_controls_escaped_whatever_prints():
    """One place: any renderable printed through the App — a tree, a table, plain text."""
    from rich.table import Table
    from rich.tree import Tree

    app = App(color=True)
    app.console.file = io.StringIO()
    tree = Tree("root \x1b[2J")
    tree.add("bidi \u202eevil, C1 \x9b31m")
    table = Table()
    table.add_column("x")
    table.add_row("cell \x1b]0;t\x07")
    app.print("[red]red[/] text \x1b[3J", tree, table)
    out = app.console.file.getvalue()
    assert "\\x1b[3J" in out and "\\x1b[2J" in out and "\\u202e" in out and "\\x9b31m" in out
    assert "\\x1b]0;t" in out
    assert "\x1b[2J" not in out and "\u202e" not in out and "\x9b" not in out


@pytest.mark.parametrize("args,message", [
    (["deploy", "R", "S", "--timeout", "nan"], "expected a number of seconds from 0 to 604800, got 'nan'"),
    (["deploy", "R", "S", "--for", "-1"], "expected a number of seconds from 0 to 604800, got '-1'"),
    (["run", "S", "--rig", "R", "--wait", "nan"], "expected a number of seconds from 0 to 604800 or inf, got 'nan'"),
    (["run", "S", "--rig", "R", "--repeat", "1000000000"], "1000000000 is not in the range 1<=x<=10000"),
    (["run", "S", "--rig", "R", "--retries", "99999"], "99999 is not in the range 0<=x<=100"),
    (["history", "--last", "100000000000000000000"], "is not in the range 1<=x<=100000"),
    # regression guard: a string "1e400" was never a duration
    (["record", "--rig", "R", "-o", "x.mcap", "--duration", "1e400"], "invalid --duration: expected a duration such"),
    (["record", "--rig", "R", "-o", "x.mcap", "--duration", "1000000h"], "expected a duration of at most 168h"),
])
def test_numeric_options_are_bounded(args, message, capsys):
    """nan, inf, negative and absurd counts were accepted and failed later (an internal error,
    a wait that never ends, a plan of a billion benches)."""
    code = run_guarded(cli, ["--no-color", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and "internal error" not in err


@pytest.fixture
def replay_files(tmp_path) -> tuple[Path, Path]:
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\nbuses:\n  chassis: {kind: can, emulated: true}\n")
    log = tmp_path / "drive.log"
    log.write_text("(1.000000) can0 100#01\n")
    return rig, log


@pytest.mark.parametrize("extra,message", [
    (["--loop", "100000000"], "--loop: expected a value ≤ 100000, got 100000000"),
    (["--rate", "1e-12"], "--rate: expected a value ≥ 0.001, got 1e-12"),
    (["--rate", "nan"], "--rate: expected a finite number, got nan"),
    (["--end", "1e400"], "--end: expected a duration such as '250ms', '2s' or a number of seconds, got '1e400'"),
    (["--budget", "span_error=nan"], "invalid --budget: expected a fraction ≥ 0 such as 0.001, got 'nan'"),
    (["--dbc", "/dev/null"], "--dbc: DBC file /dev/null is not a regular file (a character device)"),
])
def test_replay_options_are_bounded_before_anything_plays(replay_files, extra, message, capsys):
    rig, log = replay_files
    code = run_guarded(cli, ["--no-color", "replay", str(log), "--rig", str(rig), *extra])
    err = capsys.readouterr().err
    assert (code, err) == (2, f"error: {message}\n")


def test_replay_of_an_empty_stimulus_file_names_it(replay_files, capsys):
    rig, log = replay_files
    log.write_text("")
    code = run_guarded(cli, ["--no-color", "replay", str(log), "--rig", str(rig)])
    assert (code, capsys.readouterr().err) == (2, f"error: FILES: stimulus file {log} is empty: it has no frames "
                                                  "to play\n")


def test_mf4_without_asammdf_says_what_to_install(tmp_path):
    """Export and replay of MF4 without the extra reported a corrupt file (or an internal error)."""
    blocked = "import sys; sys.modules['asammdf'] = None; "
    rec = tmp_path / "run.mcap"
    rec.write_bytes(b"\x89MCAP0\r\n")
    r = hil("export", str(rec), "--to", "mf4", prelude=blocked, env={"NO_COLOR": "1"})
    assert (r.returncode, r.stderr) == (2, f"error: cannot export to {tmp_path / 'run.mf4'}: MF4 needs asammdf, "
                                           "which is not installed: pip install 'hil[mf4]'\n")
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: r\nbuses:\n  chassis: {kind: can, emulated: true}\n")
    mf4 = tmp_path / "drive.mf4"
    mf4.write_bytes(b"MDF     4.10    ")
    r = hil("replay", str(mf4), "--rig", str(rig), prelude=blocked, env={"NO_COLOR": "1"})
    assert (r.returncode, r.stderr) == (2, f"error: FILES: stimulus file {mf4}: MF4 needs asammdf, which is not "
                                           "installed: pip install 'hil[mf4]'\n")
    r = hil("analyze", str(mf4), "--suite", str(GOOD / "suite.yaml"), "--bench", "latency", prelude=blocked,
            env={"NO_COLOR": "1"})
    assert (r.returncode, r.stderr) == (2, f"error: cannot read {mf4}: MF4 needs asammdf, which is not installed: "
                                           "pip install 'hil[mf4]'\n")


def test_flash_version_is_a_version(capsys):
    """`hil flash --version` names the image like a stack's version (it was taken as it came)."""
    code = run_guarded(cli, ["--no-color", "flash", str(GOOD / "rig.yaml"), "ecu", str(ROOT / "firmware_stubs" / "brake_ecu"),
                             "--version", "../../x"])
    err = capsys.readouterr().err
    assert (code, err) == (2, "error: invalid --version: expected a version (letter or digit first, then letters, "
                              "digits, . _ + ~ -; at most 32; it names files), got '../../x'\n")


def test_several_rigs_name_their_results_folders_safely(tmp_path, capsys):
    """With several rigs, results go to OUT/<rig file stem>: a file named '...yaml' wrote to OUT/..,
    and a scheduler rig name '../x' outside OUT."""
    dots = tmp_path / "...yaml"
    dots.write_text((GOOD / "rig.yaml").read_text())
    for rigs in ([str(dots), str(GOOD / "rig.yaml")], ["../x", "sim-lab-a"]):
        code = run_guarded(cli, ["--no-color", "run", str(GOOD / "suite.yaml"), *[a for r in rigs for a in ("--rig", r)],
                                 "--out", str(tmp_path / "out"), "--no-history"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"error: --rig {rigs[0]!r}: with several rigs each names"), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "results.json").exists()
