"""The committed brake ECU images are what its sources build to, byte for byte (CI rebuilds them)."""

from __future__ import annotations

from .conftest import BRAKE


def test_committed_images_match_a_fresh_build(brake_build):
    for name in ("brake_ecu.elf", "brake_ecu.bin"):
        assert (brake_build / name).read_bytes() == (BRAKE / name).read_bytes(), (
            f"{name} differs from a fresh build: run `make -C firmware_stubs/brake_ecu_c` and commit it")
