"""AN3155 end to end over a real pty: our client, the NACK paths, and Debian's stm32flash."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hil.errors import FlashError
from hil.protocol import an3155 as P
from hil.flash import stm32

BASE = 0x0800_0000


@pytest.fixture
def client(pty_bootloader):
    port = stm32.open_port(pty_bootloader.tty)
    yield stm32.Stm32Bootloader(port)
    port.close()


def test_flash_writes_verifies_and_goes(pty_bootloader):
    image = os.urandom(5000)
    steps = []
    with stm32.open_port(pty_bootloader.tty) as port:
        stm32.flash(port, image, BASE, progress=lambda step, done, total: steps.append((step, done, total)))
    assert pty_bootloader.flash.read(BASE, len(image)) == image
    assert pty_bootloader.flash.read(BASE + 5000, 8) == b"\xff" * 8  # beyond the image stays erased
    assert ("verify", 5000, 5000) in steps and steps[-1] == ("go", 1, 1)
    assert pty_bootloader.served() == {"go": BASE}


@pytest.mark.parametrize("part, version, erase", [(0x414, 0x22, P.ERASE), (0x413, 0x31, P.EXTENDED_ERASE)])
def test_get_commands_version_and_id_as_the_part_has_them(client, part, version, erase):
    client.sync()
    assert client.get() == (version, (P.GET, P.GET_VERSION, P.GET_ID, P.READ_MEMORY, P.GO, P.WRITE_MEMORY, erase,
                                      P.WRITE_PROTECT, P.WRITE_UNPROTECT, P.READOUT_PROTECT, P.READOUT_UNPROTECT))
    assert client.get_version() == version
    assert client.get_id() == part


def test_second_sync_is_answered_with_nack_like_silicon(client, pty_bootloader):
    client.sync()
    client.port.write(bytes([P.SYNC, P.SYNC]))  # seen as a command byte with a wrong complement
    assert client.port.read(1) == bytes([P.NACK])


def test_sync_completes_the_command_of_a_bootloader_left_synchronised(client, pty_bootloader):
    client.sync()  # an earlier session that ended without Go (an interrupted flash, stm32flash -r)
    client.port.close()
    with stm32.open_port(pty_bootloader.tty) as port:
        again = stm32.Stm32Bootloader(port)
        again.sync()  # the first 0x7F is taken as a command byte; the second completes it
        assert again.get_id() == 0x414


def test_unknown_command_is_nacked(client):
    client.sync()
    client.port.write(P.command(0x03))  # Get Version & Read Protection Status: an AN2662-era command
    assert client.port.read(1) == bytes([P.NACK])


def test_read_outside_memory_fails_naming_the_step(client):
    client.sync()
    with pytest.raises(FlashError, match=r"Read Memory at 0x09000000 \(address\): expected ACK \(0x79\), got NACK"):
        client.read_memory(0x0900_0000, 16)


def test_write_with_bad_checksum_is_nacked(client, pty_bootloader):
    client.sync()
    client.port.write(P.command(P.WRITE_MEMORY))
    assert client.port.read(1) == bytes([P.ACK])
    client.port.write(P.with_checksum(BASE.to_bytes(4, "big")))
    assert client.port.read(1) == bytes([P.ACK])
    client.port.write(bytes([3, 1, 2, 3, 4, 0x55]))  # checksum should be 3^1^2^3^4 = 7
    assert client.port.read(1) == bytes([P.NACK])
    assert pty_bootloader.flash.read(BASE, 4) == b"\xff" * 4


def test_writing_unerased_flash_only_clears_bits_and_verify_catches_it(client, pty_bootloader):
    client.sync()
    client.get()
    client.write_memory(BASE, b"\x0f\x0f\x0f\x0f")
    client.write_memory(BASE, b"\xf0\xff\xff\xff")
    assert client.read_memory(BASE, 4) == b"\x00\x0f\x0f\x0f"
    client.erase([0])
    assert client.read_memory(BASE, 4) == b"\xff" * 4


def test_f1_erases_with_erase_0x43_and_nacks_extended_erase(client, pty_bootloader):
    client.sync()
    client.get()
    client.write_memory(BASE + 2048, b"\x00" * 4)
    client.erase([1])  # the v2.2 bootloader's Erase (0x43): one byte per page
    assert pty_bootloader.flash.read(BASE + 2048, 4) == b"\xff" * 4
    with pytest.raises(FlashError, match=r"page 300 cannot be named by Erase \(0x43\), which takes pages 0\.\.255"):
        client.erase([300])
    client.commands = (P.EXTENDED_ERASE,)  # as if Get had offered it: the F1 refuses the command
    with pytest.raises(FlashError, match=r"stm32-uart Extended Erase: expected ACK \(0x79\), got NACK"):
        client.erase([1])


def test_go_outside_flash_is_refused(client, pty_bootloader):
    client.sync()
    with pytest.raises(FlashError, match=r"Go 0x20000400: expected ACK \(0x79\), got NACK"):
        client.go(0x2000_0400)
    assert "go" not in pty_bootloader.result


def test_silent_port_names_the_missing_bootloader(tmp_path):
    master, slave = os.openpty()
    try:
        with stm32.open_port(os.ttyname(slave)) as port, pytest.raises(
                FlashError, match=r"stm32-uart sync: expected 1 byte\(s\) within 1 s, got 0: nothing"):
            stm32.flash(port, b"x" * 16)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(shutil.which("stm32flash") is None, reason="stm32flash (Debian package) not installed")
def test_stm32flash_writes_verifies_and_starts(pty_bootloader, tmp_path):
    image = os.urandom(3000)
    (tmp_path / "image.bin").write_bytes(image)
    # 8n1: Linux refuses PARENB on a pty; on a real UART stm32flash's default 8e1 is right.
    run = subprocess.run(["stm32flash", "-m", "8n1", "-b", "115200", "-w", str(tmp_path / "image.bin"),
                          "-v", "-g", hex(BASE), pty_bootloader.tty],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Device ID    : 0x0414 (STM32F10xxx High-density)" in run.stdout
    assert pty_bootloader.flash.read(BASE, len(image)) == image
    assert pty_bootloader.served() == {"go": BASE}


def stm32flash(tty: str, *args: str) -> subprocess.CompletedProcess:
    # 8n1: Linux refuses PARENB on a pty; on a real UART stm32flash's default 8e1 is right.
    return subprocess.run(["stm32flash", "-m", "8n1", "-b", "115200", *args, tty],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("stm32flash") is None, reason="stm32flash (Debian package) not installed")
def test_readout_protection_refuses_access_until_unprotect_erases_the_flash(client, pty_bootloader, tmp_path):
    secret = os.urandom(256)
    client.sync()
    client.get()
    client.erase([0])
    client.write_memory(BASE, secret)
    client.port.close()
    protect = stm32flash(pty_bootloader.tty, "-j")
    assert protect.returncode == 0, protect.stdout + protect.stderr
    assert pty_bootloader.flash.options.read_protected and pty_bootloader.resets(1) == 1
    read = stm32flash(pty_bootloader.tty, "-r", str(tmp_path / "out.bin"), "-S", f"{BASE:#x}:256")
    assert read.returncode != 0 and "Failed to read memory" in read.stderr + read.stdout
    with stm32.open_port(pty_bootloader.tty) as port, pytest.raises(
            FlashError, match=r"stm32-uart Erase: expected ACK \(0x79\), got NACK \(0x1f\); the part "
                              r"refuses the command itself: its readout protection \(RDP\) is on"):
        stm32.flash(port, secret, BASE)
    assert pty_bootloader.flash.read(BASE, 256) == secret  # kept, but unreadable
    unprotect = stm32flash(pty_bootloader.tty, "-k")
    assert unprotect.returncode == 0, unprotect.stdout + unprotect.stderr
    assert not pty_bootloader.flash.options.read_protected and pty_bootloader.resets(2) == 2
    assert pty_bootloader.flash.read(BASE, 256) == b"\xff" * 256  # lifting RDP erased the secret
    with stm32.open_port(pty_bootloader.tty) as port:
        stm32.flash(port, secret, BASE)
    assert pty_bootloader.served() == {"go": BASE, "resets": 2}


@pytest.mark.skipif(shutil.which("stm32flash") is None, reason="stm32flash (Debian package) not installed")
def test_write_protected_pages_refuse_erase_until_write_unprotect(client, pty_bootloader):
    client.sync()
    client.get()
    assert {P.WRITE_PROTECT, P.WRITE_UNPROTECT, P.READOUT_PROTECT, P.READOUT_UNPROTECT} <= set(client.commands)
    client.write_memory(BASE + 5 * 2048, b"\x00" * 4)
    client.port.write(P.command(P.WRITE_PROTECT))  # sectors 5 and 6 (one page each on this part)
    assert client.port.read(1) == bytes([P.ACK])
    client.port.write(P.with_checksum(bytes([1, 5, 6])))
    assert client.port.read(1) == bytes([P.ACK])  # then the part resets
    assert pty_bootloader.flash.options.write_protected == [5, 6]
    client.sync()
    client.get()
    for pages in ([4, 5], None):  # some pages, and a mass erase
        with pytest.raises(FlashError, match=r"stm32-uart Erase: expected ACK \(0x79\), got NACK \(0x1f\)$"):
            client.erase(pages)
    with pytest.raises(FlashError, match=r"Write Memory at 0x08003000 \(data\): expected ACK"):
        client.write_memory(BASE + 6 * 2048, b"\x00" * 4)
    assert pty_bootloader.flash.read(BASE + 5 * 2048, 4) == b"\x00" * 4  # neither erased nor written
    assert pty_bootloader.flash.read(BASE + 6 * 2048, 4) == b"\xff" * 4
    unprotect = stm32flash(pty_bootloader.tty, "-u")
    assert unprotect.returncode == 0, unprotect.stdout + unprotect.stderr
    assert pty_bootloader.flash.options.write_protected == [] and pty_bootloader.resets(2) == 2
    client.sync()
    client.erase([4, 5])
    assert pty_bootloader.flash.read(BASE + 5 * 2048, 4) == b"\xff" * 4
