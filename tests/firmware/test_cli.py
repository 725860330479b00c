"""`hil firmware build` / `hil firmware info`, run as a real process."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tests.hilcli import hil as run_hil

ROOT = Path(__file__).resolve().parents[2]


hil = partial(run_hil, "--no-color")


def test_build_then_info(tmp_path):
    r = hil("firmware", "build", str(ROOT / "firmware_stubs" / "brake_ecu"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    image = tmp_path / "brake_ecu-1.0.0.hilfw"
    size = image.stat().st_size
    assert r.stdout.startswith(f"built brake_ecu-1.0.0.hilfw: brake_ecu 1.0.0, {size} bytes, crc32 0x")
    r = hil("firmware", "info", str(image), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"brake_ecu 1.0.0: payload {size - 84} bytes, crc32 0x") and lines[0].endswith(" ok")
    code = (ROOT / "firmware_stubs" / "brake_ecu" / "brake_ecu.py").stat().st_size
    assert lines[1:3] == ["  brake.dbc (1674 bytes)", f"  brake_ecu.py ({code} bytes)"]
    assert lines[3].startswith("  manifest.json (")


def test_info_refuses_a_damaged_image_with_exit_2(tmp_path):
    hil("firmware", "build", str(ROOT / "firmware_stubs" / "echo"), "-o", "echo.hilfw", cwd=tmp_path)
    raw = bytearray((tmp_path / "echo.hilfw").read_bytes())
    raw[-5] ^= 0x40
    (tmp_path / "echo.hilfw").write_bytes(bytes(raw))
    r = hil("firmware", "info", "echo.hilfw", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: echo.hilfw: payload CRC32 mismatch: header says 0x")
    assert r.stdout == ""


def test_build_reports_manifest_errors_with_position(tmp_path):
    stub = tmp_path / "bad"
    stub.mkdir()
    (stub / "firmware.yaml").write_text("name: bad\nversion: 1\nentry: bad:setup\ncolour: red\n")
    (stub / "bad.py").write_text("def setup(mcu): pass\n")
    r = hil("firmware", "build", str(stub), cwd=tmp_path)
    assert r.returncode == 2
    assert f"{stub}/firmware.yaml:4:1: colour: unknown key 'colour'" in r.stderr
