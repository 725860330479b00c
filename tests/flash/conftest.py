"""The emulated AN3155 bootloader for flashing tools: in a thread on the master end of a real pty
(``pty_bootloader``), or the emulated MCU process itself on an emulated serial link
(``emulated_part``); tools open the tty path. Both are the part the ``part`` fixture names."""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass, field

import pytest

from hil.buses import RigBuses
from hil.firmware.bootloader import Bootloader, Stopped, SystemReset
from hil.firmware.flashmem import FlashMemory, SystemMemory, unique_id
from hil.firmware.mcu import McuConfig
from hil.protocol import an3155
from hil.lifecycle.children import Child, python_argv, spawn
from hil.spec.rig import Rig


class MasterPort:
    """The pty master as a byte port with a read time-out (what the bootloader needs of a UART)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.timeout = 0.1

    def read(self, n: int) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], self.timeout)
        return os.read(self.fd, n) if ready else b""

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)


UID = bytes(range(0x30, 0x3C))


@dataclass
class PtyBootloader:
    tty: str
    flash: FlashMemory
    master: MasterPort
    result: dict = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def resets(self, n: int) -> int:
        """The system resets so far, once there are ``n`` (or 10 s passed): the part ACKs a
        protection command before it resets, so a tool may return before the reset is counted."""
        deadline = time.monotonic() + 10
        while self.result.get("resets", 0) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.result.get("resets", 0)

    def served(self) -> dict:
        """What the bootloader ended with, once it has (Go answers ACK before serve() returns)."""
        self.thread.join(30)
        return self.result


@pytest.fixture
def part():
    """The part the bootloader is (tests override it with a parametrize on ``part``)."""
    return an3155.DEFAULT_PID


@pytest.fixture
def pty_bootloader(tmp_path, part):
    master, slave = os.openpty()
    flash = FlashMemory(tmp_path / "flash.bin", an3155.DEVICES[part])
    system = SystemMemory(flash, UID)
    stop = threading.Event()
    port = MasterPort(master)
    rig = PtyBootloader(os.ttyname(slave), flash, port)

    def serve():  # BOOT0 stays high: a system reset comes back into the bootloader
        while True:
            try:
                rig.result["go"] = Bootloader(port, system, stop, rig.log.append).serve()
                return
            except SystemReset:
                rig.result["resets"] = rig.result.get("resets", 0) + 1
            except Stopped:
                rig.result["stopped"] = True
                return

    rig.thread = threading.Thread(target=serve, daemon=True)
    rig.thread.start()
    yield rig
    stop.set()
    rig.thread.join(5)
    os.close(master)
    os.close(slave)


@dataclass
class EmulatedPart:
    tty: str  # the host end of the MCU's UART (bus "uart" of ``buses``)
    flash: FlashMemory
    uid: bytes
    child: Child
    buses: RigBuses


@pytest.fixture
def emulated_part(tmp_path, part):
    """``python -m hil.firmware`` as ``part``, held in its bootloader (BOOT0 high) on an emulated
    serial link, as the emulated MCU target starts it for flashing."""
    rig = Rig.model_validate({"name": "parts", "buses": {"uart": {"kind": "serial", "emulated": True,
                                                                  "pace": False}}})
    with RigBuses(rig, tmp_path / "run") as buses:
        cfg = McuConfig(name="mcu", flash_path=str(tmp_path / "flash.bin"), work_dir=str(tmp_path), pid=part,
                        boot0=True, bootloader_port=buses.serial_port("uart", side="device"))
        (tmp_path / "mcu.json").write_text(cfg.to_json())
        child = spawn(python_argv("hil.firmware", str(tmp_path / "mcu.json")), what="emulated MCU", leash=True,
                      cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                      bufsize=0)  # unbuffered: a line read never takes the next ones from select's sight
        try:
            deadline = time.monotonic() + 60  # bounded wait for start-up, not a timing assertion
            state = None
            while state != "stm32-bootloader":
                assert time.monotonic() < deadline, "the emulated MCU did not reach its bootloader within 60 s"
                if select.select([child.proc.stdout], [], [], 1)[0]:
                    line = child.proc.stdout.readline()
                    assert line, f"the emulated MCU {child.ended()}"
                    state = json.loads(line).get("state")
            yield EmulatedPart(buses.serial_port("uart"), FlashMemory(cfg.flash_path, an3155.DEVICES[part]),
                               unique_id("mcu"), child, buses)
        finally:
            child.stop(5)
