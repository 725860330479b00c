"""Emulated MCU targets on a simbus rig: boot checks, STM32 UART flashing (ours and stm32flash),
reset and power, and the echo / brake_ecu stubs on the emulated CAN bus."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import sys
import threading
import time
from pathlib import Path

import can
import cantools
import pytest

from hil.buses import RigBuses
from hil.errors import BundleError, DeployError, FlashError, TargetTimeoutError
from hil.firmware.build import build
from hil.firmware.flashmem import FlashMemory, OptionBytes
from hil.protocol import an3155
from hil.spec.rig import Rig
from hil.spec.stack import Stack
from hil.targets import bundle, create_target
from hil.values import ConsoleLine

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "firmware_stubs"
BRAKE_DBC = cantools.database.load_file(str(STUBS / "brake_ecu" / "brake.dbc"))

COPY = "import pathlib, sys; print('programmed', pathlib.Path(sys.argv[1]).name, 'into', sys.argv[2])"

RIG = {
    "name": "mcu-test",
    "buses": {
        "chassis": {"kind": "can", "emulated": True},
        "brake-console": {"kind": "serial", "emulated": True},
        "echo-uart": {"kind": "serial", "emulated": True},
        "plain-console": {"kind": "serial", "emulated": True},
        "tool-uart": {"kind": "serial", "emulated": True},
    },
    "targets": {
        "brake": {"kind": "mcu", "emulated": True, "buses": ["chassis"], "console": "brake-console",
                  "flash": {"method": "uds", "bus": "chassis", "tx_id": 0x7E0, "rx_id": 0x7E8}},
        "echo": {"kind": "mcu", "emulated": True, "buses": ["chassis"], "console": "echo-uart",
                 "flash": {"method": "stm32-uart", "bus": "echo-uart"}},
        "plain": {"kind": "mcu", "emulated": True, "buses": ["chassis"], "console": "plain-console"},
        "tool": {"kind": "mcu", "emulated": True, "buses": ["chassis"], "console": "tool-uart",
                 "flash": {"method": "command", "bus": "tool-uart", "timeout": "120s",
                           "argv": ["stm32flash", "-m", "8n1", "-b", "{baudrate}", "-w", "{image}", "-v", "{port}"]}},
    },
}


class Sim:
    """A running emulated rig and the MCU targets a test made on it (stopped at the end)."""

    def __init__(self, rig: Rig, buses: RigBuses, run_dir: Path):
        self.rig, self.buses, self.run_dir = rig, buses, run_dir
        self.lines: list[ConsoleLine] = []
        self.targets = []

    def target(self, name: str, stub: str | Path, version: str = "1.0.0", **component):
        comp = {"kind": "firmware", "target": name, "image": str(stub), "version": version, **component}
        stack = Stack.model_validate({"name": "t", "version": "1", "components": {f"{name}-fw": comp}})
        t = create_target(name, self.rig.targets[name], self.rig, self.buses, self.run_dir, self.lines.append)
        self.targets.append(t)
        return t, dict(stack.components)

    def up(self, name: str, stub: str | Path, **component):
        t, components = self.target(name, stub, **component)
        t.deploy(components)
        t.start()
        t.wait_ready()
        return t

    def console(self, source: str) -> list[str]:
        return [line.text for line in self.lines if line.source == source]

    def close(self) -> None:
        for t in self.targets:
            t.shutdown() if isinstance(t, can.BusABC) else t.stop()


@pytest.fixture(scope="module")
def rig_buses(tmp_path_factory):
    rig = Rig.model_validate(RIG)
    run_dir = tmp_path_factory.mktemp("run")
    with RigBuses(rig, run_dir) as buses:
        yield rig, buses, run_dir


@pytest.fixture
def sim(rig_buses):
    s = Sim(*rig_buses)
    yield s
    s.close()


@pytest.fixture
def chassis(rig_buses):
    bus = rig_buses[1].open_can("chassis")
    yield bus
    bus.shutdown()


def wait_for(pred, what: str, timeout_s: float = 30.0):
    """Poll until ``pred()`` is truthy (bounded wait, not a timing assertion)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def gather(bus: can.BusABC, until, what: str, timeout_s: float = 30.0) -> list[can.Message]:
    """Frames from ``bus`` until ``until(frames)`` holds (bounded wait, not a timing assertion)."""
    frames: list[can.Message] = []
    end = time.monotonic() + timeout_s
    while not until(frames):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        msg = bus.recv(0.05)
        if msg is not None:
            frames.append(msg)
    return frames


def echo_set_up(sim: Sim, console: str) -> None:
    """Until the echo stub's last console line (its set-up message) has arrived."""
    wait_for(lambda: any("echo: answering" in x for x in sim.console(console)[-1:]), "echo set up")


def ids(frames: list[can.Message], ident: int) -> list[can.Message]:
    return [m for m in frames if m.arbitration_id == ident]


# -- boot -------------------------------------------------------------------------------------


def test_corrupt_flash_is_refused_at_boot_and_the_console_says_why(sim):
    t, components = sim.target("plain", STUBS / "echo")
    t.deploy(components)
    raw = bytearray(t.flash_path.read_bytes())
    raw[200] ^= 0x01  # one bit in the payload
    t.flash_path.write_bytes(bytes(raw))
    t.start()
    with pytest.raises(DeployError, match=r"firmware did not start: boot: invalid image: payload CRC32 mismatch"):
        t.wait_ready()
    wait_for(lambda: any("payload CRC32 mismatch" in text and "staying in bootloader" in text
                         for text in sim.console("plain-console")), "the reason on the console")


def test_a_corrupt_image_file_is_refused_at_deploy(sim, tmp_path):
    raw = bytearray(build(STUBS / "echo").to_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / "echo.hilfw").write_bytes(bytes(raw))
    t, components = sim.target("plain", tmp_path / "echo.hilfw")
    with pytest.raises(DeployError, match=r"echo.hilfw is invalid: payload CRC32 mismatch: header says 0x"):
        t.deploy(components)


def test_write_protected_flash_refuses_direct_programming(sim):
    t, components = sim.target("plain", STUBS / "echo")
    t.flash_path.parent.mkdir(parents=True, exist_ok=True)
    memory = FlashMemory(t.flash_path, an3155.DEVICES[an3155.DEFAULT_PID])
    memory.set_options(OptionBytes(write_protected=[0]))  # as the AN3155 Write Protect command leaves it
    try:
        with pytest.raises(FlashError, match=r"target 'plain': programming the flash failed: page 0 is write-protected"):
            t.deploy(components)
    finally:
        memory.options_path.unlink()


def test_firmware_is_flashed_from_the_bundle_after_its_checksums(sim, tmp_path):
    t, components = sim.target("plain", STUBS / "echo")
    good = tmp_path / "good.tar.gz"
    bundle.build("t", "1", components, good)
    bad = tmp_path / "bad.tar.gz"  # one byte of the stub changed after the manifest was written
    with tarfile.open(good) as tin, tarfile.open(bad, "w:gz") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("/echo.py"):
                data = data.replace(b"echo", b"ecHo", 1)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    with pytest.raises(BundleError, match=r"checksum verification failed for 1 file\(s\):\n  files/plain-fw/echo/echo.py"):
        t.deploy(components, bad)
    t, components = sim.target("plain", STUBS / "echo")
    t.deploy(components, good)
    t.start()
    t.wait_ready()  # the image built from the bundle's files boots
    assert (t.dir / "bundle" / "files" / "plain-fw" / "echo" / "echo.py").is_file()


def test_the_stack_version_must_match_the_image(sim):
    t, components = sim.target("plain", STUBS / "echo", version="9.9.9")
    with pytest.raises(DeployError, match=r"expects firmware version '9.9.9', but .*echo is echo '1.0.0'"):
        t.deploy(components)


def test_an_mcu_takes_exactly_one_firmware_component(sim):
    t, _ = sim.target("plain", STUBS / "echo")
    with pytest.raises(DeployError, match="exactly one firmware component, got: none"):
        t.deploy({})


# -- STM32 UART bootloader, reset, power --------------------------------------------------------


def test_stm32_uart_flash_then_echo_and_reset_mid_run(sim, chassis):
    t = sim.up("echo", STUBS / "echo")
    boots = lambda: [x for x in sim.console("echo-uart") if x.startswith("boot: image echo 1.0.0")]
    wait_for(lambda: len(boots()) == 1, "the boot at start")  # the flash tool held the UART before
    echo_set_up(sim, "echo-uart")  # a reset cuts a line on its way out: the fragment starts the next line
    chassis.send(can.Message(arbitration_id=0x700, data=b"\x09", is_extended_id=False))  # out of range
    chassis.send(can.Message(arbitration_id=0x510, data=b"\x01\x02\x03", is_extended_id=False))
    answers = ids(gather(chassis, lambda f: ids(f, 0x580), "the echo"), 0x580)  # frames are handled in order
    assert [bytes(m.data) for m in answers] == [b"\x01\x02\x03"]
    t.reset()  # mid-run: the MCU boots again from the flash it kept
    wait_for(lambda: len(boots()) == 2, "the boot after reset")
    echo_set_up(sim, "echo-uart")
    chassis.send(can.Message(arbitration_id=0x57F, data=b"again", is_extended_id=False))
    answers = ids(gather(chassis, lambda f: ids(f, 0x580), "the echo after reset"), 0x580)
    assert [bytes(m.data) for m in answers] == [b"again"]


@pytest.mark.skipif(shutil.which("stm32flash") is None, reason="stm32flash (Debian package) not installed")
def test_stm32flash_as_the_flash_command_on_the_console_uart(sim):
    for attempt in range(3):  # stm32flash gives up after 0.5 s without a byte; a loaded CI host can stall that long
        t, components = sim.target("tool", STUBS / "echo")
        try:
            t.deploy(components)
            break
        except FlashError as exc:
            t.stop()
            if attempt == 2 or "exited with code 1" not in str(exc):
                raise
    log = (t.dir / "flash.log").read_text()
    assert "Device ID    : 0x0414 (STM32F10xxx High-density)" in log
    assert re.search(r"Wrote and verified address 0x0800[0-9a-f]{4} \(100\.00%\) Done\.", log)
    t.start()
    t.wait_ready()  # the image stm32flash wrote boots
    wait_for(lambda: any(x.startswith("boot: image echo 1.0.0") for x in sim.console("tool-uart")),
             "the boot line on the console captured again after flashing")


def test_power_off_and_on(sim):
    t = sim.up("plain", STUBS / "echo")
    echo_set_up(sim, "plain-console")  # nothing left on its way out
    pid = t.proc.pid
    t.power_off()
    assert t.proc is None
    boots = lambda: sum(x.startswith("boot: image echo") for x in sim.console("plain-console"))
    wait_for(lambda: boots() == 1, "the first boot on the console")
    t.power_on()
    assert t.proc.pid != pid
    t.wait_ready()  # the boot after power on
    wait_for(lambda: boots() == 2, "the second boot on the console")
    t.stop()
    t.power_on()  # a stopped target stays off
    assert t.proc is None


# -- stubs on the emulated bus --------------------------------------------------------------------


def test_echo_processing_delay_is_added(sim, rig_buses):
    sim.up("plain", STUBS / "echo", config={"delay": "20ms"})
    chassis = rig_buses[1].open_can("chassis", receive_own_messages=True)
    sim.targets.append(chassis)  # shut down with the targets
    for i in range(5):
        chassis.send(can.Message(arbitration_id=0x500 + i, data=bytes([i]), is_extended_id=False))
        time.sleep(0.05)
    frames = gather(chassis, lambda f: len(ids(f, 0x580)) == 5, "five answers")
    sent = {m.data[0]: m.timestamp for m in frames if m.arbitration_id != 0x580}
    got = {m.data[0]: m.timestamp for m in frames if m.arbitration_id == 0x580}
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert all(got[i] - sent[i] >= 0.020 for i in got), {i: got[i] - sent[i] for i in got}


def request(counter: int, decel: float) -> can.Message:
    msg = BRAKE_DBC.get_message_by_name("BrakeRequest")
    data = msg.encode({"RequestCounter": counter % 16, "RequestMode": 1, "DecelRequest": decel, "PressureRequest": 0})
    return can.Message(arbitration_id=msg.frame_id, data=data, is_extended_id=False)


def decoded(frames: list[can.Message], name: str) -> list[dict]:
    msg = BRAKE_DBC.get_message_by_name(name)
    return [msg.decode(bytes(m.data), decode_choices=False) for m in frames if m.arbitration_id == msg.frame_id]


def test_brake_ecu_controls_pressure_then_goes_safe_when_requests_stop(sim, chassis):
    sim.up("plain", STUBS / "brake_ecu", config={"request_timeout": "300ms"})
    for i in range(60):  # 5 m/s² every ~10 ms
        chassis.send(request(i, 5.0))
        time.sleep(0.01)
    frames = gather(chassis, lambda f: len(decoded(f, "BrakeCommand")) == 60, "a BrakeCommand per request")
    commands = decoded(frames, "BrakeCommand")
    assert [c["RequestCounter"] for c in commands] == [i % 16 for i in range(60)]
    assert all(c["TargetPressure"] == pytest.approx(50.0) for c in commands)
    status = decoded(frames, "BrakeStatus")
    assert status[-1]["BrakeState"] == 1 and status[-1]["MeasuredPressure"] > status[0]["MeasuredPressure"]
    assert [s["StatusCounter"] for s in status] == [(status[0]["StatusCounter"] + i) % 16 for i in range(len(status))]
    # requests stop: the heartbeat reports the safe state with the request-timeout fault
    after = gather(chassis, lambda f: any(b["BrakeState"] == 2 for b in decoded(f, "BrakeHeartbeat")), "safe state")
    beat = next(b for b in decoded(after, "BrakeHeartbeat") if b["BrakeState"] == 2)
    assert beat["FaultCode"] == 1
    wait_for(lambda: any("request timeout" in text and "safe state" in text for text in sim.console("plain-console")),
             "the timeout on the console")
    chassis.send(request(0, 1.0))  # requests resume: active again
    gather(chassis, lambda f: any(s["BrakeState"] == 1 for s in decoded(f, "BrakeStatus")), "active after resume")


def test_brake_ecu_reports_a_counter_jump(sim, chassis):
    sim.up("plain", STUBS / "brake_ecu", config={"request_timeout": "2s"})
    for counter in (0, 1, 5):
        chassis.send(request(counter, 2.0))
        time.sleep(0.01)
    frames = gather(chassis, lambda f: any(b["FaultCode"] == 2 for b in decoded(f, "BrakeHeartbeat")),
                    "a heartbeat reporting the counter error")
    beats = decoded(frames, "BrakeHeartbeat")
    assert beats[-1]["BrakeState"] == 1  # a counter jump is reported, not a reason to go safe
    nxt = decoded(gather(chassis, lambda f: decoded(f, "BrakeHeartbeat"), "the next heartbeat"), "BrakeHeartbeat")
    assert nxt[0]["FaultCode"] == 0  # reported once


# -- the real-MCU driver (a board behind a flasher command and a serial console) ---------------------


# a flasher that talks on the port: 5 requests, each answered in full (the board echoes); it reads
# each answer only 0.1 s later, so any other reader of the port would have taken it by then
LOOPBACK = ("import serial, sys, time; p = serial.Serial(sys.argv[1], int(sys.argv[2]), timeout=10); "
            "got = sum(p.write(bytes([i]) * 16) and not time.sleep(0.1) and p.read(16) == bytes([i]) * 16 "
            "for i in range(5)); print('echoed', got, 'of', 5); sys.exit(got != 5)")

REAL_RIG = {
    "name": "bench",
    "buses": {"board-console": {"kind": "serial", "emulated": True},  # stands in for the board's USB UART
              "boot-uart": {"kind": "serial", "emulated": True, "baudrate": 921600}},
    "targets": {"board": {"kind": "mcu", "console": "board-console", "flash": {
                    "method": "command", "argv": [sys.executable, "-c", COPY, "{image}", "{target}"], "timeout": "30s"}},
                "uart-board": {"kind": "mcu", "console": "boot-uart", "flash": {
                    "method": "command", "bus": "boot-uart", "timeout": "30s",
                    "argv": [sys.executable, "-c", LOOPBACK, "{port}", "{baudrate}"]}}},
}


@pytest.fixture
def real_rig(tmp_path):
    rig = Rig.model_validate(REAL_RIG)
    with RigBuses(rig, tmp_path) as buses:
        yield rig, buses, tmp_path


def test_real_mcu_flashes_with_the_command_and_waits_for_its_console(real_rig):
    rig, buses, run_dir = real_rig
    lines = []
    t = create_target("board", rig.targets["board"], rig, buses, run_dir, lines.append)
    stack = Stack.model_validate({"name": "t", "version": "1", "components": {"fw": {
        "kind": "firmware", "target": "board", "image": str(STUBS / "echo"), "version": "1.0.0",
        "ready": {"console": "^app: up$", "timeout": "30s"}}}})
    with t, buses.open_serial("board-console", side="device") as board:
        t.deploy(dict(stack.components))
        assert (run_dir / "targets" / "board" / "flash.log").read_text() == "programmed echo-1.0.0.hilfw into board\n"
        t.start()
        board.write(b"boot\r\napp: up\r\n")  # what the board prints after its reset
        t.wait_ready()
    assert [line.text for line in lines] == ["boot", "app: up"]
    assert {line.source for line in lines} == {"board-console"}


def test_a_real_boards_raw_binary_is_flashed_byte_for_byte(real_rig, tmp_path):
    rig, buses, run_dir = real_rig
    app = tmp_path / "app.bin"  # what objcopy -O binary makes: no header, no version inside
    app.write_bytes(bytes(range(256)) * 40)
    t = create_target("board", rig.targets["board"], rig, buses, run_dir, lambda line: None)
    stack = Stack.model_validate({"name": "t", "version": "1", "components": {"fw": {
        "kind": "firmware", "target": "board", "image": str(app), "version": "2.4.1"}}})
    with t:
        t.deploy(dict(stack.components))
    assert (run_dir / "targets" / "board" / "flash.log").read_text() == "programmed app-2.4.1.bin into board\n"
    assert (run_dir / "targets" / "board" / "app-2.4.1.bin").read_bytes() == app.read_bytes()


def test_an_emulated_mcu_refuses_a_raw_binary_that_is_no_cortex_m_image(sim, tmp_path):
    (tmp_path / "app.bin").write_bytes(b"\x00\x50\x00\x20" * 64)  # SP in RAM, but an even reset vector
    t, components = sim.target("plain", tmp_path / "app.bin", version="2.4.1")
    with pytest.raises(DeployError, match=r"app-2.4.1.bin is neither hil firmware nor a Cortex-M image for the "
                                          r"emulated STM32F103 \(no vector table at its start"):
        t.deploy(components)


def test_a_board_that_never_gets_ready_is_quoted_from_its_serial_console(real_rig):
    rig, buses, run_dir = real_rig
    t = create_target("board", rig.targets["board"], rig, buses, run_dir, lambda line: None)
    stack = Stack.model_validate({"name": "t", "version": "1", "components": {"fw": {
        "kind": "firmware", "target": "board", "image": str(STUBS / "echo"), "version": "1.0.0",
        "ready": {"console": "^app: up$", "timeout": "1s"}}}})
    with t, buses.open_serial("board-console", side="device") as board:
        t.deploy(dict(stack.components))
        t.start()
        board.write(b"boot\r\npanic: flash ECC error\r\n")
        with pytest.raises(TargetTimeoutError, match=r"(?s)component 'fw' not ready after 1s: .*last 2 console "
                                                     r"line\(s\) of board-console:\n  \| boot\n  \| panic: flash ECC error"):
            t.wait_ready()


def test_a_flash_command_on_the_console_uart_is_its_only_reader(real_rig):
    rig, buses, run_dir = real_rig
    t = create_target("uart-board", rig.targets["uart-board"], rig, buses, run_dir, lambda line: None)
    stack = Stack.model_validate({"name": "t", "version": "1", "components": {"fw": {
        "kind": "firmware", "target": "uart-board", "image": str(STUBS / "echo"), "version": "1.0.0"}}})
    stop = threading.Event()

    def board() -> None:  # the board's bootloader echoes what the flasher sends
        with buses.open_serial("boot-uart", side="device", timeout=0.05) as port:
            while not stop.is_set():
                port.write(port.read(max(1, port.in_waiting)))

    echo = threading.Thread(target=board)
    echo.start()
    try:
        with t:
            t.deploy(dict(stack.components))  # the console reader would take some of the echo
            assert t.serial_console is not None  # captured again once the flasher is done
    finally:
        stop.set()
        echo.join()
    assert (run_dir / "targets" / "uart-board" / "flash.log").read_text() == "echoed 5 of 5\n"
