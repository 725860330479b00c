"""An AN3155 bootloader served on the master end of a real pty; tools open the slave tty path."""

from __future__ import annotations

import os
import select
import threading
from dataclasses import dataclass, field

import pytest

from hil.firmware.bootloader import Bootloader, Stopped, SystemReset
from hil.firmware.flashmem import FlashMemory, SystemMemory
from hil.flash import an3155


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
