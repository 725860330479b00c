"""STM32 parts: the device table, the emulated MCU process configured as an F1 or an F4 and read
and flashed by PyPI's stm32loader (unmodified but for the pty's missing modem lines), Debian's
stm32flash and our client, and the rig's ``part`` and ``geometry`` fields."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stm32loader.bootloader import Stm32Bootloader as Stm32Loader
from stm32loader.uart import SerialConnection

from hil.buses import RigBuses
from hil.cli import cli
from hil.cli.app import run_guarded
from hil.errors import FlashError
from hil.firmware.flashmem import FlashMemory, OptionBytes
from hil.protocol import an3155 as P
from hil.flash import stm32
from hil.spec.rig import Rig
from hil.spec.stack import Stack
from hil.targets import create_target

BASE = 0x0800_0000
KIB = 1024
STUBS = Path(__file__).resolve().parents[2] / "firmware_stubs"
F1, F4 = 0x414, 0x413
needs_stm32flash = pytest.mark.skipif(shutil.which("stm32flash") is None,
                                      reason="stm32flash (Debian package) not installed")

# stm32loader's own command line with one change: a pty has no modem lines (setting DTR or RTS
# fails with ENOTTY), so its BOOT0 and reset toggles do nothing; the emulated MCU is held in its
# bootloader by its own BOOT0.
STM32LOADER = """
import sys
from stm32loader import main, uart

class NoModemLines(uart.SerialConnection):
    def enable_reset(self, enable=True):
        pass

    def enable_boot0(self, enable=True):
        pass

main.SerialConnection = NoModemLines
main.main(*sys.argv[1:])
"""


class PtyConnection(SerialConnection):
    """stm32loader's serial connection on a pty: the BOOT0 and reset levels it asks for are
    recorded instead of driven (a pty has no modem lines)."""

    def __init__(self, tty: str):
        super().__init__(tty, 115_200, "N")
        self.lines: list[tuple[str, bool]] = []

    def enable_reset(self, enable=True):
        self.lines.append(("reset", enable))

    def enable_boot0(self, enable=True):
        self.lines.append(("boot0", enable))


# -- the device table -----------------------------------------------------------------------------


def test_the_table_covers_the_families_with_their_erase_command_and_registers():
    families = {d.family.name for d in P.DEVICES.values()}
    assert {"F0", "F1", "F3", "F4", "F7", "G0", "G4", "L4", "H7"} <= families
    assert {d.family.erase for d in P.DEVICES.values() if d.family.name == "F1"} == {P.ERASE}
    assert {d.family.erase for d in P.DEVICES.values() if d.family.name != "F1"} == {P.EXTENDED_ERASE}
    assert (P.FAMILIES["F1"].flash_size_reg, P.FAMILIES["F1"].uid_reg) == (0x1FFF_F7E0, 0x1FFF_F7E8)
    assert (P.FAMILIES["F4"].flash_size_reg, P.FAMILIES["F4"].uid_reg) == (0x1FFF_7A22, 0x1FFF_7A10)


def test_sector_layouts_of_f4_f7_and_h7():
    f4 = P.DEVICES[F4]
    assert f4.describe() == "1024 KiB at 0x08000000: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB"
    assert [f4.page_of(BASE + a) for a in (0, 16 * KIB - 1, 16 * KIB, 64 * KIB, 128 * KIB, 1024 * KIB - 1)] == [
        0, 0, 1, 4, 5, 11]
    assert f4.page_span(4) == (64 * KIB, 64 * KIB) and f4.page_span(5) == (128 * KIB, 128 * KIB)
    assert P.DEVICES[0x449].describe() == "1024 KiB at 0x08000000: 4 x 32 KiB, 1 x 128 KiB, 3 x 256 KiB"
    assert P.DEVICES[0x450].describe() == "2048 KiB at 0x08000000: 16 x 128 KiB"
    assert P.DEVICES[0x468].describe() == "128 KiB at 0x08000000: 64 x 2 KiB"
    with pytest.raises(ValueError, match="sectors of different sizes"):
        _ = f4.page_size


# -- the emulated bootloader in a thread: memory a real part serves --------------------------------


@pytest.mark.parametrize("part, size_at, uid_at, kib", [(F1, 0x1FFF_F7E0, 0x1FFF_F7E8, 512),
                                                      (F4, 0x1FFF_7A22, 0x1FFF_7A10, 1024)])
def test_flash_size_unique_id_and_system_memory_are_readable(pty_bootloader, part, size_at, uid_at, kib):
    with stm32.open_port(pty_bootloader.tty) as port:
        bl = stm32.Stm32Bootloader(port)
        bl.sync()
        assert int.from_bytes(bl.read_memory(size_at, 2), "little") == kib
        assert bl.read_memory(uid_at, 12) == bytes(range(0x30, 0x3C))
        system = P.DEVICES[part].system[0]
        sp, reset = bl.read_memory(system, 8)[:4], bl.read_memory(system + 4, 4)
        assert int.from_bytes(sp, "little") == P.DEVICES[part].ram_end
        assert P.DEVICES[part].system[0] < int.from_bytes(reset, "little") < P.DEVICES[part].system[1]
        with pytest.raises(FlashError, match=r"Read Memory at 0x1ff00000 \(address\): expected ACK"):
            bl.read_memory(0x1FF0_0000, 4)  # nothing there on either part


@pytest.mark.parametrize("part", [F1])
def test_f1_option_bytes_show_readout_and_write_protection(pty_bootloader):
    options = P.FAMILIES["F1"].options[0]
    with stm32.open_port(pty_bootloader.tty) as port:
        bl = stm32.Stm32Bootloader(port)
        bl.sync()
        assert bl.read_memory(options, 16) == bytes.fromhex("a55aff00ff00ff00ff00ff00ff00ff00")
    pty_bootloader.flash.set_options(OptionBytes(read_protected=False, write_protected=[4, 5, 200]))
    with stm32.open_port(pty_bootloader.tty) as port:
        bl = stm32.Stm32Bootloader(port)
        bl.sync()
        # 2 KiB pages: a WRP bit covers 2 pages; pages from 62 on share bit 31
        assert bl.read_memory(options + 8, 8) == bytes.fromhex("fb04ff00ff007f80")


@pytest.mark.parametrize("part", [F4])
def test_f4_option_bytes_show_write_protected_sectors(pty_bootloader):
    pty_bootloader.flash.set_options(OptionBytes(read_protected=False, write_protected=[1, 11]))
    with stm32.open_port(pty_bootloader.tty) as port:
        bl = stm32.Stm32Bootloader(port)
        bl.sync()
        assert bl.read_memory(0x1FFF_C000, 16) == bytes.fromhex("ecaaffffffffffff fdf7ffffffffffff")


@pytest.mark.parametrize("part", [F4])
def test_our_client_erases_only_the_sectors_an_image_covers(pty_bootloader):
    flash = pty_bootloader.flash
    flash.program(BASE + 32 * KIB, b"keep")  # sector 2
    image = os.urandom(20_000)  # sectors 0 and 1
    with stm32.open_port(pty_bootloader.tty) as port:
        stm32.flash(port, image, BASE)
    assert flash.read(BASE, len(image)) == image
    assert flash.read(BASE + 32 * KIB, 4) == b"keep"
    assert "bootloader: erased 2 page(s)" in pty_bootloader.log


@pytest.mark.parametrize("part", [F4])
def test_the_parts_flash_size_register_bounds_the_flash_the_table_allows(pty_bootloader, monkeypatch):
    bigger = P.DEVICES[F4].layout + ((8, 128 * KIB),)  # as if the table's row were a 2 MiB variant
    monkeypatch.setitem(P.DEVICES, F4, dataclasses.replace(P.DEVICES[F4], layout=bigger))
    with stm32.open_port(pty_bootloader.tty) as port, pytest.raises(
            FlashError, match=r"64 bytes at 0x08100000 do not fit the flash of STM32F40xxx/41xxx \(1024 KiB\) "
                              r"\(1024 KiB at 0x08000000: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB\)"):
        stm32.flash(port, b"x" * 64, BASE + 1024 * KIB)


# -- an unknown part: refused, or flashed with the rig's geometry ------------------------------------


@pytest.mark.parametrize("part", [F4])
def test_an_id_missing_from_the_table_is_refused_naming_it(pty_bootloader, monkeypatch):
    monkeypatch.delitem(P.DEVICES, F4)  # a part hil's table lacks (as 0x413 now is)
    with stm32.open_port(pty_bootloader.tty) as port, pytest.raises(
            FlashError, match=r"stm32-uart Get ID: product id 0x413 is not in hil's device table \(F0 0x440 .*\); "
                              r"give the part's flash layout in the rig as flash.geometry"):
        stm32.flash(port, b"x" * 64, BASE)


@pytest.mark.parametrize("part", [F4])
def test_an_id_missing_from_the_table_is_flashed_with_the_rigs_geometry(pty_bootloader, monkeypatch):
    monkeypatch.delitem(P.DEVICES, F4)
    geometry = P.from_geometry(F4, BASE, ((4, 16 * KIB), (1, 64 * KIB), (7, 128 * KIB)))
    image = os.urandom(40_000)
    with stm32.open_port(pty_bootloader.tty) as port:
        stm32.flash(port, image, BASE, geometry=geometry)
    assert pty_bootloader.flash.read(BASE, len(image)) == image
    assert "bootloader: erased 3 page(s)" in pty_bootloader.log


def test_a_geometry_for_another_id_is_refused(pty_bootloader):
    geometry = P.from_geometry(0x999, BASE, ((64, 2 * KIB),))
    with stm32.open_port(pty_bootloader.tty) as port, pytest.raises(
            FlashError, match=r"the part answers product id 0x414, but the rig's flash.geometry describes 0x999"):
        stm32.flash(port, b"x" * 64, BASE, geometry=geometry)


# -- the emulated MCU process, read and flashed by other people's tools -----------------------------


@pytest.mark.parametrize("part", [F4])
def test_stm32loader_reads_flash_size_and_uid_and_flashes_an_f4_with_sector_erase(emulated_part):
    flash = emulated_part.flash
    conn = PtyConnection(emulated_part.tty)
    conn.connect()
    try:
        loader = Stm32Loader(conn, device_family="F4", verbosity=0)
        loader.reset_from_system_memory()
        assert conn.lines == [("boot0", True), ("reset", True), ("reset", False)]
        assert loader.get() == 0x31 and loader.extended_erase
        assert loader.get_id() == F4
        assert loader.get_flash_size_and_uid() == (1024, emulated_part.uid)
        loader.write_memory(BASE + 32 * KIB, b"keep")  # sector 2, which the image does not touch
        image = os.urandom(20_000)
        loader.erase_memory([0, 1])  # Extended Erase of sectors 0 and 1 (16 KiB each)
        loader.write_memory_data(BASE, image)
        loader.verify_data(loader.read_memory_data(BASE, len(image)), image)
        loader.go(BASE)
    finally:
        conn.disconnect()
    assert flash.read(BASE, len(image)) == image
    assert flash.read(BASE + len(image), 16) == b"\xff" * 16
    assert flash.read(BASE + 32 * KIB, 4) == b"keep"


@pytest.mark.parametrize("part, family, kib", [(F1, "F1", 512), (F4, "F4", 1024)])
def test_stm32loader_command_line_shows_uid_and_size_and_flashes(emulated_part, tmp_path, family, kib):
    image = os.urandom(3000)
    (tmp_path / "image.bin").write_bytes(image)
    run = subprocess.run([sys.executable, "-c", STM32LOADER, "-p", emulated_part.tty, "-P", "none", "-f", family,
                          "-n", "-e", "-w", "-v", "-a", hex(BASE), str(tmp_path / "image.bin")],
                         capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    uid = emulated_part.uid
    swapped = "-".join(bytes(uid[i] for i in part).hex().upper() for part in Stm32Loader.UID_SWAP)
    assert f"Device UID: {swapped}" in out and f"Flash size: {kib} KiB" in out
    assert "Verification OK" in out
    assert emulated_part.flash.read(BASE, len(image)) == image


@needs_stm32flash
@pytest.mark.parametrize("part, name", [(F4, "STM32F40xxx/41xxx"), (F1, "STM32F10xxx High-density")])
def test_stm32flash_flashes_the_part_and_reads_its_id_registers(emulated_part, tmp_path, part, name):
    flash = emulated_part.flash
    beyond = BASE + 32 * KIB  # F4: sector 2; F1: page 16
    with stm32.open_port(emulated_part.tty) as port:
        bl = stm32.Stm32Bootloader(port)
        bl.sync()
        bl.write_memory(beyond, b"keep")
    image = os.urandom(20_000)
    (tmp_path / "image.bin").write_bytes(image)
    # 8n1: Linux refuses PARENB on a pty; on a real UART stm32flash's default 8e1 is right.
    base = ["stm32flash", "-m", "8n1", "-b", "115200"]
    read = subprocess.run([*base, "-r", str(tmp_path / "ids.bin"), "-S", f"{P.DEVICES[part].family.uid_reg:#x}:20",
                           emulated_part.tty], capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stdout + read.stderr
    ids = (tmp_path / "ids.bin").read_bytes()
    assert ids[:12] == emulated_part.uid
    if part == F4:  # F_SIZE at UID + 0x12
        assert int.from_bytes(ids[18:20], "little") == 1024
    write = subprocess.run([*base, "-w", str(tmp_path / "image.bin"), "-v", "-g", hex(BASE), emulated_part.tty],
                           capture_output=True, text=True, timeout=120)
    assert write.returncode == 0, write.stdout + write.stderr
    assert f"Device ID    : {part:#06x} ({name})" in write.stdout
    assert flash.read(BASE, len(image)) == image
    assert flash.read(beyond, 4) == b"keep"  # stm32flash erased only the pages or sectors the image covers


@pytest.mark.parametrize("part", [F4])
def test_machine_code_on_a_part_other_than_the_f103_stays_in_the_bootloader_saying_why(emulated_part):
    vectors = (0x2000_5000).to_bytes(4, "little") + (BASE + 0x101).to_bytes(4, "little")  # SP, reset
    with stm32.open_port(emulated_part.tty) as port:
        stm32.flash(port, vectors + bytes(248), BASE)  # then Go: the part boots what it holds
    stdout = emulated_part.child.proc.stdout
    states = []
    while not states or states[-1]["state"] != "bootloader":
        assert select.select([stdout], [], [], 60)[0], f"no boot report within 60 s: {states}"
        event = json.loads(stdout.readline())
        states += [event] if event["kind"] == "state" else []
    assert states[-1]["reason"] == ("boot: machine code runs on the emulated STM32F10xxx High-density only (part "
                                    "0x414); this MCU is STM32F40xxx/41xxx; halted")


# -- the rig: part and geometry, checked at load time -----------------------------------------------


RIG = """\
name: parts
buses:
  uart: {kind: serial, emulated: true}
  lab-uart: {kind: serial, port: /dev/ttyUSB0}
targets:
  ecu:
    kind: mcu
    emulated: true
    part: %s
    console: uart
    flash: {method: stm32-uart, bus: uart}
  board:
    kind: mcu
    flash:
      method: stm32-uart
      bus: lab-uart
      enter: rts-dtr
      address: %s
      geometry:
        pid: 0x4A9
        layout:
          - {count: 4, size: 16384}
          - {count: 1, size: %s}
"""


def check(capsys, tmp_path, *values) -> tuple[int, list[str]]:
    rig = tmp_path / "rig.yaml"
    rig.write_text(RIG % values)
    code = run_guarded(cli, ["check", str(rig)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line.replace(str(rig), "rig.yaml") for line in err.splitlines()]


def test_a_rig_with_an_emulated_f4_and_an_unknown_part_with_geometry_passes_check(capsys, tmp_path):
    assert check(capsys, tmp_path, "0x413", "0x08000000", "65536")[0] == 0


def test_part_and_geometry_mistakes_name_file_line_and_column(capsys, tmp_path):
    code, lines = check(capsys, tmp_path, "0x450", "0x08020000", "65000")
    assert code == 2
    assert lines[0].startswith("error: rig.yaml:23:30: targets.board.flash.geometry.layout[1].size: "
                               "expected a power of two such as 2048 or 131072, got 65000")
    code, lines = check(capsys, tmp_path, "0x450", "0x08020000", "65536")
    assert code == 2
    assert lines[:2] == [
        "error: rig.yaml:9:11: targets.ecu.part: hil does not emulate part 0x450 (STM32H74xxx/75xxx); it emulates: "
        "F0 0x440 0x444 0x442 0x445 0x448; F1 0x412 0x410 0x414 0x420 0x428 0x418 0x430; F2 0x411; "
        "F3 0x432 0x422 0x439 0x438 0x446; F4 0x413 0x419 0x423 0x433 0x458 0x431 0x441 0x421 0x463; "
        "F7 0x452 0x449 0x451",
        "error: rig.yaml:18:16: targets.board.flash.address: address 0x08020000 is outside the geometry's flash "
        "(128 KiB at 0x08000000: 4 x 16 KiB, 1 x 64 KiB)"]


def test_part_is_for_emulated_mcus_only():
    rig = Rig.model_validate({"name": "r", "buses": {"u": {"kind": "serial", "port": "/dev/ttyUSB0"}},
                              "targets": {"board": {"kind": "mcu", "part": F4,
                                                    "flash": {"method": "stm32-uart", "bus": "u", "enter": "manual"}}}})
    assert rig.problems() == [(("targets", "board", "part"), "'part' chooses what an emulated MCU is; a real MCU "
                               "tells its product id itself (give flash.geometry for a part hil's table lacks)")]


# -- the emulated MCU target as an F4, flashed by our client -----------------------------------------


def echo_stack(target: str) -> dict:
    comp = {"kind": "firmware", "target": target, "image": str(STUBS / "echo"), "version": "1.0.0"}
    return dict(Stack.model_validate({"name": "t", "version": "1", "components": {"echo": comp}}).components)


def test_an_emulated_f4_target_is_flashed_over_its_bootloader_and_boots(tmp_path):
    rig = Rig.model_validate({"name": "f4", "buses": {"uart": {"kind": "serial", "emulated": True}},
                              "targets": {"ecu": {"kind": "mcu", "emulated": True, "part": F4, "console": "uart",
                                                  "flash": {"method": "stm32-uart", "bus": "uart",
                                                            "enter": "rts-dtr"}}}})  # the lab's YAML, emulated
    lines = []
    with RigBuses(rig, tmp_path / "run") as buses:
        target = create_target("ecu", rig.targets["ecu"], rig, buses, tmp_path / "run", lines.append)
        try:
            target.deploy(echo_stack("ecu"))
            target.start()
            target.wait_ready()
        finally:
            target.stop()
        flash = FlashMemory(target.flash_path, P.DEVICES[F4])
    assert flash.path.stat().st_size == 1024 * KIB  # the F4's flash
    image = target.image.to_bytes()
    assert flash.read(BASE, len(image)) == image
    assert any(line.text.startswith("boot: image echo 1.0.0") for line in lines)


@pytest.mark.parametrize("part", [F4])
def test_a_real_mcu_target_flashes_on_one_session_and_names_a_port_without_modem_lines(emulated_part, tmp_path):
    def board(enter: str):
        rig = Rig.model_validate({"name": "lab", "buses": {"uart": {"kind": "serial", "emulated": True}},
                                  "targets": {"board": {"kind": "mcu", "flash": {"method": "stm32-uart", "bus": "uart",
                                                                                 "enter": enter}}}})
        return create_target("board", rig.targets["board"], rig, emulated_part.buses, tmp_path / enter, [].append)

    target = board("rts-dtr")  # a pty has no modem lines: refused before a byte is sent
    with pytest.raises(FlashError, match=r"stm32-uart enter rts-dtr: cannot drive DTR on /dev/pts/\d+"):
        target.deploy(echo_stack("board"))
    target = board("manual")  # BOOT0 was set by hand: the emulated part waits in its bootloader
    target.deploy(echo_stack("board"))
    image = target.image.to_bytes()
    assert emulated_part.flash.read(BASE, len(image)) == image


@pytest.mark.parametrize("layout, message", [
    ([{"count": 65_000, "size": 128}, {"count": 1000, "size": 128}],
     "expected at most 65520 pages (Extended Erase numbers them in 16 bits), got 66000"),
    ([{"count": 256, "size": 1 << 24}], "expected a flash inside the 32-bit address space, but it would end at "
                                        "0x108000000")])
def test_a_geometry_stays_addressable(layout, message):
    from pydantic import ValidationError

    from hil.spec.rig import FlashGeometry

    with pytest.raises(ValidationError, match=re.escape(message)):
        FlashGeometry.model_validate({"pid": 0x4A9, "layout": layout})
