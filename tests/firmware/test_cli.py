"""`hil firmware build` / `hil firmware info`, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hil(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil", "--no-color", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_build_then_info(tmp_path):
    r = hil(tmp_path, "firmware", "build", str(ROOT / "firmware_stubs" / "brake_ecu"))
    assert r.returncode == 0, r.stderr
    image = tmp_path / "brake_ecu-1.0.0.hilfw"
    size = image.stat().st_size
    assert r.stdout.startswith(f"built brake_ecu-1.0.0.hilfw: brake_ecu 1.0.0, {size} bytes, crc32 0x")
    r = hil(tmp_path, "firmware", "info", str(image))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"brake_ecu 1.0.0: payload {size - 84} bytes, crc32 0x") and lines[0].endswith(" ok")
    code = (ROOT / "firmware_stubs" / "brake_ecu" / "brake_ecu.py").stat().st_size
    assert lines[1:3] == ["  brake.dbc (1674 bytes)", f"  brake_ecu.py ({code} bytes)"]
    assert lines[3].startswith("  manifest.json (")


def test_info_refuses_a_damaged_image_with_exit_2(tmp_path):
    hil(tmp_path, "firmware", "build", str(ROOT / "firmware_stubs" / "echo"), "-o", "echo.hilfw")
    raw = bytearray((tmp_path / "echo.hilfw").read_bytes())
    raw[-5] ^= 0x40
    (tmp_path / "echo.hilfw").write_bytes(bytes(raw))
    r = hil(tmp_path, "firmware", "info", "echo.hilfw")
    assert r.returncode == 2
    assert r.stderr.startswith("error: echo.hilfw: payload CRC32 mismatch: header says 0x")
    assert r.stdout == ""


def test_build_reports_manifest_errors_with_position(tmp_path):
    stub = tmp_path / "bad"
    stub.mkdir()
    (stub / "firmware.yaml").write_text("name: bad\nversion: 1\nentry: bad:setup\ncolour: red\n")
    (stub / "bad.py").write_text("def setup(mcu): pass\n")
    r = hil(tmp_path, "firmware", "build", str(stub))
    assert r.returncode == 2
    assert f"{stub}/firmware.yaml:4:1: colour: unknown key 'colour'" in r.stderr
