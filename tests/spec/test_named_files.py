"""Every file a spec names is checked before it is read, and `hil check` refuses what `hil run`
would refuse later and the files can tell: cases that need a FIFO, a sparse file or a module on
sys.path, which the static corpus under files/bad/ cannot hold."""

from __future__ import annotations

import os
import sys
import threading
import typing
from pathlib import Path

import pytest

from hil.cli import cli
from hil.cli.app import run_guarded
from hil.dbc import load_dbc
from hil.errors import SpecError
from hil.files import FileRefused
from hil.spec import check_files
from hil.spec.check import key_module_problem
from hil.spec.common import FileKind, SpecPath, named_files
from hil.spec.rig import Rig
from hil.spec.stack import Stack
from hil.spec.suite import Suite

FILES = Path(__file__).parent / "files"
GOOD = FILES / "good"
ROOT = Path(__file__).parents[2]
BRAKE_DBC = ROOT / "firmware_stubs" / "brake_ecu" / "brake.dbc"


def check(capsys, *paths: Path) -> tuple[int, list[str]]:
    code = run_guarded(cli, ["--no-color", "check", *map(str, paths)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.splitlines()


def suite_file(tmp_path: Path, bench: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(f"name: s\ndefaults: {{stack: {GOOD / 'stack.yaml'}}}\nbenches:\n  - name: b\n{bench}")
    return path


def in_thread(fn, seconds: float = 30):
    """Run ``fn`` in a thread; fail the test (instead of hanging it) when it does not return."""
    out: list = []

    def run() -> None:
        try:
            out.append((fn(), None))
        except Exception as exc:  # raised again in the test's thread
            out.append((None, exc))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"still running after {seconds} s: blocked"
    result, error = out[0]
    if error is not None:
        raise error
    return result


def test_a_dbc_that_is_a_fifo_is_refused_at_once(tmp_path, capsys):
    """A DBC FIFO hung `hil check` forever; now it is refused without being opened for long."""
    fifo = tmp_path / "bus.dbc"
    os.mkfifo(fifo)
    path = suite_file(tmp_path, f"    dbc: [{fifo}]\n")
    code, lines = in_thread(lambda: check(capsys, GOOD / "rig.yaml", path))
    assert (code, lines) == (2, [f"error: {path}:5:11: benches[0].dbc[0]: DBC file {fifo} is not a regular file (a FIFO)"])


def test_a_stimulus_file_that_is_a_fifo_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "drive.asc"
    os.mkfifo(fifo)
    path = suite_file(tmp_path, f"    stimulus: {{sources: [{{file: {fifo}}}]}}\n")
    code, lines = in_thread(lambda: check(capsys, GOOD / "rig.yaml", path))
    assert code == 2
    assert lines == [f"error: {path}:5:33: benches[0].stimulus.sources[0].file: stimulus file {fifo} is not a "
                     "regular file (a FIFO)"]


def test_a_sparse_one_tebibyte_shipped_file_is_refused_by_its_size_without_reading(tmp_path, capsys):
    big = tmp_path / "model.onnx"
    with open(big, "wb") as f:
        f.truncate(1 << 40)  # 4 KB on disk, 1 TiB to whoever reads it
    stack = tmp_path / "stack.yaml"
    stack.write_text(f"name: st\nversion: '1'\ncomponents:\n  p: {{kind: process, target: hpc, argv: [p], "
                     f"files: [{big}]}}\n")
    code, lines = in_thread(lambda: check(capsys, GOOD / "rig.yaml", stack))
    assert (code, lines) == (2, [f"error: {stack}:4:54: components.p.files[0]: shipped file {big} is "
                                 "1,024.0 GiB; at most 1.0 GiB is accepted"])


def test_the_dbc_loader_refuses_devices_fifos_and_oversized_files_naming_them(tmp_path):
    fifo = tmp_path / "f.dbc"
    os.mkfifo(fifo)
    big = tmp_path / "big.dbc"
    with open(big, "wb") as f:
        f.truncate(9 << 20)
    for path, why in (("/dev/urandom", "a character device"), (fifo, "a FIFO"), (big, "9.0 MiB; at most 8.0 MiB")):
        with pytest.raises(FileRefused, match=why) as info:
            in_thread(lambda: load_dbc([path]))
        assert str(path) in str(info.value)
    (tmp_path / "cp.dbc").write_bytes(b"VERSION \"\x81\"\n")  # 0x81 is no cp1252 character
    with pytest.raises(FileRefused, match=r"cp\.dbc is not DBC text \(byte 0x81 at offset 9"):
        load_dbc([tmp_path / "cp.dbc"])
    assert load_dbc([BRAKE_DBC]).get_message_by_name("BrakeStatus").frame_id == 0x112


def test_every_path_field_of_every_model_names_its_kind_of_file():
    """A path field without a FileKind would escape the named-file check: none may exist."""
    from hil.spec.common import Spec

    found: dict[str, list[FileKind]] = {}

    def walk(tp, where: str, seen: set) -> None:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is typing.Annotated and args[0] is Path or tp is Path:
            found[where] = [m for m in getattr(tp, "__metadata__", ()) if isinstance(m, FileKind)]
        elif isinstance(tp, type) and issubclass(tp, Spec):
            if tp not in seen:
                seen.add(tp)
                for name, field in tp.model_fields.items():
                    walk(field.rebuild_annotation(), f"{tp.__name__}.{name}", seen)
        else:
            for arg in args[:1] if typing.get_origin(tp) is typing.Annotated else args:
                walk(arg, where, seen)

    for top in (Rig, Suite, Stack):
        walk(top, top.__name__, set())
    assert len(found) >= 12, found
    assert [where for where, kinds in found.items() if not kinds] == []


def test_named_files_walks_nested_lists_maps_and_unions():
    suite = check_files(GOOD / "rig.yaml", [GOOD / "suite.yaml"]).suites[0].model
    found = {loc: (path, kind.what) for loc, path, kind in named_files(suite)}
    assert found == {("defaults", "stack"): (GOOD / "stack.yaml", "spec file"),
                     ("defaults", "dbc", 0): (BRAKE_DBC, "DBC file")}
    assert SpecPath  # the annotated type every path field builds on


def test_a_broken_health_suite_is_reported_with_the_rig(tmp_path, capsys):
    """`hil run` runs the rig's health suite first; `hil check RIG` checks it, and its stacks."""
    health = tmp_path / "health.yaml"
    health.write_text(f"name: h\ndefaults: {{stack: {GOOD / 'stack.yaml'}}}\nbenches:\n  - {{name: b, windw: 1s}}\n")
    rig = tmp_path / "rig.yaml"
    rig.write_text((GOOD / "rig.yaml").read_text() + "health: health.yaml\n")
    code, lines = check(capsys, rig)
    assert code == 2
    assert lines[0].startswith(f"error: {health}:4:15: benches[0].windw: unknown key 'windw'")
    health.write_text(f"name: h\ndefaults: {{stack: {GOOD / 'stack.yaml'}}}\nbenches:\n  - {{name: b}}\n")
    checked = check_files(rig)
    assert (checked.health.model.name, checked.suites) == ("h", [])
    assert list(checked.stacks) == [GOOD / "stack.yaml"]
    checked = check_files(rig, [Path(os.path.relpath(health))])  # run as a suite of its own
    assert (checked.health, [s.model.name for s in checked.suites]) == (None, ["h"])


@pytest.fixture
def key_modules(tmp_path, monkeypatch):
    """A folder on sys.path for seed-key modules; a module that would leave a mark if it ran."""
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "imported"
    (tmp_path / "oem_keys.py").write_text(
        f"open({str(marker)!r}, 'w').close()  # a side effect the check must never cause\n"
        "def key(level, seed):\n    return seed\n")
    (tmp_path / "broken_keys.py").write_text("def key(level, seed)\n    return seed\n")
    (tmp_path / "oem").mkdir()
    (tmp_path / "oem" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "oem" / "algo.py").write_text("from hashlib import sha256 as key\n")
    yield marker
    for name in ("oem_keys", "broken_keys", "oem", "oem.algo"):
        sys.modules.pop(name, None)


def test_a_key_module_is_found_and_compiled_but_never_run(key_modules):
    assert key_module_problem("oem_keys:key") is None
    assert key_module_problem("oem.algo:key") is None  # bound by an import; the package is not run
    assert not key_modules.exists(), "checking a key module ran it"
    assert key_module_problem("oem_keys:nope").startswith("module 'oem_keys' (")
    assert key_module_problem("oem_keys:nope").endswith("has no function 'nope' at its top level")
    problem = key_module_problem("broken_keys:key")
    assert problem.startswith("module 'broken_keys' (") and problem.endswith("does not compile: line 1: expected ':'")
    assert key_module_problem("oem.nope:key") == "no module 'oem.nope' can be imported (with this Python and its sys.path)"
    assert key_module_problem("hil.protocol.seedkey:key_function") is None


def test_a_bad_key_module_is_refused_by_hil_check_at_the_key(key_modules, tmp_path, capsys):
    rig = tmp_path / "rig.yaml"
    rig.write_text((GOOD / "rig.yaml").read_text().replace("rx_id: 0x7E8}", "rx_id: 0x7E8, key: 'broken_keys:key'}"))
    code, lines = check(capsys, rig)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {rig}:20:73: targets.ecu.flash.key: module 'broken_keys' (")


def test_stimulus_content_is_checked_by_hil_check_at_the_bench(tmp_path, capsys):
    """What `hil run` refuses before bring-up from the stimulus file's content, `hil check` refuses."""
    log = tmp_path / "drive.log"
    log.write_text("(1.000000) can0 100#0102\n")
    path = suite_file(tmp_path, f"    stimulus: {{sources: [{{file: {log}, map: {{can9: chassis}}}}]}}\n")
    code, lines = check(capsys, GOOD / "rig.yaml", path)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {path}:5:5: benches[0].stimulus: ")
    assert "can9" in lines[0] and "can0" in lines[0]


def test_files_named_twice_are_reported_once(tmp_path):
    path = suite_file(tmp_path, "    dbc: [nowhere.dbc]\n  - name: c\n    dbc: [nowhere.dbc]\n")
    with pytest.raises(SpecError) as info:
        check_files(GOOD / "rig.yaml", [path, path])
    assert [p.split(": ", 2)[1] for p in info.value.problems] == ["benches[0].dbc[0]", "benches[1].dbc[0]"]
