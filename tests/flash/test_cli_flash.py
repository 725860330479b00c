"""`hil flash` against the emulated rig, run as a real process."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tests.hilcli import hil as run_hil

ROOT = Path(__file__).resolve().parents[2]


hil = partial(run_hil, "--no-color")


def test_flash_echo_over_the_stm32_bootloader_keeps_the_flash(tmp_path):
    r = hil("flash", "rigs/sim-minimal.yaml", "echo-mcu", "firmware_stubs/echo", "--run-dir", str(tmp_path), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "flashed echo-mcu with firmware_stubs/echo (1.0.0) over stm32-uart"
    assert "verify" in r.stdout
    flash = (tmp_path / "targets" / "echo-mcu" / "flash.bin").read_bytes()
    assert flash.startswith(b"HILF") and flash[8:12] == b"echo"


def test_flash_names_the_mcu_targets_when_given_another(tmp_path):
    r = hil("flash", "rigs/sim-minimal.yaml", "hpc", "firmware_stubs/echo", cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr == "error: expected an MCU target of rig 'sim-minimal' (brake-mcu, echo-mcu), got 'hpc'\n"


def test_a_failing_flash_step_exits_3_naming_it(tmp_path):
    (tmp_path / "rig.yaml").write_text(
        "name: bench\nbuses:\n  uart: {kind: serial, emulated: true}\n"
        "targets:\n  board:\n    kind: mcu\n    console: uart\n"
        "    flash: {method: command, argv: ['false', '{image}']}\n")
    r = hil("flash", "rig.yaml", "board", str(ROOT / "firmware_stubs" / "echo"), cwd=tmp_path)
    assert r.returncode == 3
    assert r.stderr == "error: command 'false': exited with code 1; no output\n"


def test_a_raw_binary_needs_its_version_and_an_emulated_mcu_takes_only_cortex_m_code(tmp_path):
    (tmp_path / "app.bin").write_bytes(b"\x00\x50\x00\x20" * 64)
    r = hil("flash", "rigs/sim-minimal.yaml", "echo-mcu", str(tmp_path / "app.bin"), cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr == f"error: {tmp_path / 'app.bin'} is a raw image: nothing in it says its version; give --version\n"
    r = hil("flash", "rigs/sim-minimal.yaml", "echo-mcu", str(tmp_path / "app.bin"), "--version", "2.4.1", cwd=ROOT)
    assert r.returncode == 3
    assert "app-2.4.1.bin is neither hil firmware nor a Cortex-M image" in r.stderr
