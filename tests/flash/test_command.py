"""The `command` flasher: argv template without a shell, output kept, exit code and time-out named."""

from __future__ import annotations

import json
import sys

import pytest

from hil.errors import FlashError
from hil.flash import command
from hil.spec.rig import CommandFlash


def spec(*argv: str, timeout: str = "30s") -> CommandFlash:
    return CommandFlash(method="command", argv=list(argv), timeout=timeout)


def test_image_is_substituted_and_no_shell_is_involved(tmp_path):
    image = tmp_path / "fw; rm -rf x.bin"  # would be two commands in a shell
    image.write_bytes(b"\x01\x02")
    out = command.flash(spec(sys.executable, "-c", "import sys; print(open(sys.argv[1],'rb').read().hex(), sys.argv[2])",
                             "{image}", "{target}"), {"image": str(image), "target": "brake"})
    assert out == "0102 brake\n"


def test_fields_are_put_in_once_and_unknown_braces_are_kept():
    argv = ["-w", "{image}", "--dev={port}@{baudrate}", "{other}"]
    fields = {"image": "/x/{port}.bin", "port": "/dev/ttyUSB0", "baudrate": "115200"}
    assert command.expand(argv, fields) == ["-w", "/x/{port}.bin", "--dev=/dev/ttyUSB0@115200", "{other}"]


def test_exit_code_and_output_are_in_the_error():
    with pytest.raises(FlashError, match=r"exited with code 3; output:\nError: target not halted"):
        command.flash(spec(sys.executable, "-c", "print('Error: target not halted'); raise SystemExit(3)"),
                      {})


def test_a_failing_tools_whole_output_is_kept_in_the_log(tmp_path):
    code = "print('Open On-Chip Debugger: no device found'); print('x' * 3000); raise SystemExit(1)"
    log = tmp_path / "flash.log"
    with pytest.raises(FlashError, match=rf"exited with code 1; output \(all of it in {log}\):\nx+$") as err:
        command.flash(spec(sys.executable, "-c", code), {}, log=log)
    assert "no device found" not in str(err.value)  # the error quotes only the tail ...
    assert log.read_text().startswith("Open On-Chip Debugger: no device found\n")  # ... the log has it all


def test_missing_tool_is_named(tmp_path):
    with pytest.raises(FlashError, match=r"command 'no-such-flasher-tool': cannot run: No such file"):
        command.flash(spec("no-such-flasher-tool", "{image}"), {"image": str(tmp_path / "x")})


def test_timeout_kills_the_tool_and_its_children():
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
           "print('programming...', flush=True); time.sleep(60)"
    with pytest.raises(FlashError, match=r"still running after 500ms, killed; output:\nprogramming\.\.\."):
        command.flash(spec(sys.executable, "-c", code, timeout="500ms"), {})


# -- hostile values (issue #12) ------------------------------------------------------------------


def test_a_hostile_value_standing_alone_is_one_argument_taken_literally(tmp_path):
    """Regression guard: no shell ever ran the flasher; a value as a whole argument is passed as is."""
    marker = tmp_path / "pwned"
    values = {"image": f"$(touch {marker}); touch {marker} `touch {marker}`\n| touch {marker}", "port": "a b  c",
              "target": "'\"\\"}
    out = command.flash(spec(sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))",
                             "{image}", "{port}", "{target}"), values)
    assert json.loads(out) == [values["image"], values["port"], values["target"]]
    assert not marker.exists()


@pytest.mark.parametrize("value", ["/run dir/fw.bin", "fw.bin; shutdown", "fw]; exec rm", "$x", "a\nb", "{x}",
                                   "fw'.bin", "fw\".bin", "fw`.bin"])
def test_a_value_inside_a_longer_argument_must_be_plain(value):
    """openocd parses '-c "program {image} verify"' as Tcl: a space or bracket would be its syntax."""
    with pytest.raises(FlashError) as exc:
        command.expand(["openocd", "-c", "program {image} verify reset exit"], {"image": value})
    assert str(exc.value) == (f"command argument 'program {{image}} verify reset exit': {{image}} would be {value!r}, "
                              "which the tool could split or interpret inside a longer argument; give it as an "
                              "argument of its own, or use a plain path (letters, digits, / . _ - + , : @ = %)")


def test_a_plain_value_inside_a_longer_argument_is_put_in():
    assert command.expand(["-c", "program {image} verify", "--port={port}"],
                          {"image": "/runs/r-1/targets/brake/fw_1.0+git.bin", "port": "/dev/ttyUSB0"}) == \
        ["-c", "program /runs/r-1/targets/brake/fw_1.0+git.bin verify", "--port=/dev/ttyUSB0"]


@pytest.mark.parametrize("argv, fields, message", [
    (["flasher", "--x=\0rm"], {}, "command argv[1] holds a NUL byte; refused"),
    (["flasher", "{image}"], {"image": "fw.bin\0; rm -rf /"}, "command: {image} would be 'fw.bin\\x00; rm -rf /', "
                                                              "which holds a NUL byte; refused"),
])
def test_a_nul_byte_is_refused(argv, fields, message):
    with pytest.raises(FlashError) as exc:
        command.expand(argv, fields)
    assert str(exc.value) == message
