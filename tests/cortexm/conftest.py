"""Firmware for the emulated STM32F103, built here with arm-none-eabi-gcc into the session's
temporary folder, and a machine to run it in-process with its console collected."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hil.cortexm import config as cortexm_config
from hil.cortexm.core import Machine
from hil.cortexm.elf import Symbols, flash_bytes
from hil.cortexm.faults import Fault
from hil.cortexm.part import PART
from hil.firmware.flashmem import FlashMemory

ROOT = Path(__file__).resolve().parents[2]
BRAKE = ROOT / "firmware_stubs" / "brake_ecu_c"
PROGRAMS = Path(__file__).with_name("firmware")


def make(folder: Path, out: Path, *targets: str) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (.ci/run installs gcc-arm-none-eabi)")
    out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["make", "-s", "-C", str(folder), f"OUT={out}", *targets], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> Path:
    """tests/cortexm/firmware/*.c built: NAME.elf each."""
    out = tmp_path_factory.mktemp("programs")
    make(PROGRAMS, out)
    return out


@pytest.fixture(scope="session")
def brake_build(tmp_path_factory) -> Path:
    """The brake ECU built afresh, with its deliberately faulting variant."""
    out = tmp_path_factory.mktemp("brake")
    make(BRAKE, out, "all", "fault")
    return out


@dataclass
class Run:
    """A machine running an image on its own thread; its console and emulator lines collected."""

    machine: Machine
    stop: threading.Event
    thread: threading.Thread
    console: bytearray = field(default_factory=bytearray)
    diagnostics: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.console.decode(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = 30.0) -> re.Match:
        """The first match of ``pattern`` in the console (bounded wait, not a timing assertion)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            m = re.search(pattern, self.text)
            if m:
                return m
            if self.faults:
                raise AssertionError(f"the core faulted waiting for {pattern!r}: {self.faults[0].summary}")
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {pattern!r}; console: {self.text!r}")

    def wait_fault(self, timeout_s: float = 30.0) -> Fault:
        end = time.monotonic() + timeout_s
        while not self.faults:
            assert time.monotonic() < end, f"no fault; console: {self.text!r}"
            time.sleep(0.02)
        return self.faults[0]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def run_image(tmp_path):
    """``run_image(elf, config={}, can_bus=None, gdb=False)``: flash the ELF's bytes (with the
    config written in) into a fresh flash file and power the machine on."""
    runs: list[Run] = []

    def start(elf: Path, config: dict | None = None, can_bus=None, gdb: bool = False) -> Run:
        image = cortexm_config.apply(flash_bytes(elf.read_bytes(), PART.flash_start, PART.flash_size), config or {})
        flash = FlashMemory(tmp_path / f"flash{len(runs)}.bin", PART.device)
        flash.program(PART.flash_start, image)
        stop, console, diagnostics, faults = threading.Event(), bytearray(), [], []
        machine = Machine(flash, console=console.extend, console_baud=115_200, diagnostic=diagnostics.append,
                          can_bus=can_bus, can_bitrate=500_000 if can_bus is not None else None,
                          symbols=Symbols.from_file(elf), gdb_port=0 if gdb else None)
        thread = threading.Thread(target=machine.run, args=(stop, faults.append))
        run = Run(machine, stop, thread, console, diagnostics, faults)
        runs.append(run)
        thread.start()
        return run

    yield start
    for run in runs:
        run.close()
