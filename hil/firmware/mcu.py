"""The emulated microcontroller: one process per MCU (``python -m hil.firmware CONFIG.json``).

It owns what the silicon owns: flash memory (a file that survives resets), a serial console (the
device end of a pty), CAN controllers (simbus, through python-can), the STM32 system bootloader
(AN3155, entered when BOOT0 is high at reset) and a UDS flash bootloader (ISO-TP on CAN, always
listening). At reset it looks at what the flash holds: machine code (a Cortex-M vector table) runs
on the emulated STM32F103 of :mod:`hil.cortexm`; a hil image is verified and run on the Python
firmware runtime; anything else stays in the bootloader and prints why. ECUReset reboots in place;
a programming session stops the application.

Standard output carries one JSON object per line for the driver (``hil.targets.mcu``): state
changes, and console lines when the MCU has no console port. Tracebacks go to standard error.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import can
import serial

from hil.clock import now_ns
from hil.cortexm.part import PART, is_machine_code
from hil.firmware.bootloader import Bootloader, Stopped, SystemReset
from hil.firmware.flashmem import FlashMemory, SystemMemory, unique_id
from hil.firmware.image import Image, ImageError, parse
from hil.firmware.runtime import Mcu
from hil.firmware.uds import EcuHooks, UdsServer
from hil.lifecycle import signals
from hil.protocol import an3155
from hil.protocol.seedkey import key_function
from hil.simbus.plugin import SimCanBus
from hil.protocol.uds import isotp_params

if TYPE_CHECKING:
    import isotp

    from hil.cortexm.core import Machine
    from hil.cortexm.faults import Fault
    from hil.simbus.faults import FaultEvent

SWITCH_INTERVAL_S = 0.0002  # a core running Cortex-M code hands the GIL over this often (Python's default: 5 ms)


@dataclass
class McuConfig:
    """What the driver tells the MCU process (written as JSON into the run folder)."""

    name: str
    flash_path: str
    work_dir: str
    pid: int = an3155.DEFAULT_PID  # the part it is (the rig's ``part``): memory map, bootloader
    boot0: bool = False
    console: str | None = None  # device end of the console tty
    bootloader_port: str | None = None  # device end of the AN3155 UART (may equal console)
    baudrate: int = 115_200
    can: dict[str, dict[str, Any]] = field(default_factory=dict)  # bus name → can.Bus kwargs
    uds: dict[str, Any] | None = None  # bus, rx_id (tester → ECU), tx_id, key, level
    config: dict[str, Any] = field(default_factory=dict)  # the component's firmware parameters
    elf: str | None = None  # the machine-code image's ELF: symbols for fault reports and gdb
    gdb_port: int | None = 0  # a machine's GDB server on 127.0.0.1 (0: any free port; None: none)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1)

    @classmethod
    def from_file(cls, path: str | Path) -> McuConfig:
        return cls(**json.loads(Path(path).read_text()))


def emit(kind: str, **data: Any) -> None:
    """One event line on stdout for the driver."""
    sys.stdout.write(json.dumps({"kind": kind, "t_ns": now_ns(), **data}) + "\n")
    sys.stdout.flush()


class Console:
    """printf lines to the console tty; like a UART, a line is dropped when nobody drains the port."""

    def __init__(self, port: serial.Serial | None):
        self.port = port
        self.muted = False
        self.partial = b""  # bytes of a line not yet ended, when there is no port

    def line(self, text: str) -> None:
        if self.partial:
            self.write(b"\r\n")
        self.write((text + "\r\n").encode())

    def write(self, data: bytes) -> None:
        """Bytes as a UART sends them; without a port, each line becomes a console event."""
        if self.muted:
            return
        if self.port is None:
            *lines, self.partial = (self.partial + data).split(b"\n")
            for raw in lines:
                emit("console", text=raw.rstrip(b"\r").decode(errors="replace"))
            return
        try:
            self.port.write(data)
        except (serial.SerialException, OSError):  # nobody drains the port: the line is lost, as on a UART
            pass


class McuProcess:
    def __init__(self, cfg: McuConfig):
        self.cfg = cfg
        self.flash = FlashMemory(cfg.flash_path, an3155.DEVICES[cfg.pid])
        self.system = SystemMemory(self.flash, unique_id(cfg.name))
        self.stop = threading.Event()  # power off
        self.phase = threading.Event()  # leave the current boot phase (reset, programming, power off)
        self.reason = ""
        self.app: Mcu | Machine | None = None
        self.boots = 0
        ports = {p for p in (cfg.console, cfg.bootloader_port) if p}
        self.ports = {p: an3155.open_uart(p, cfg.baudrate, 0.1) for p in ports}
        for port in self.ports.values():
            port.write_timeout = 0
        self.console = Console(self.ports.get(cfg.console) if cfg.console is not None else None)
        # own frames come back at their end of frame (a machine's TX mailboxes complete then), and
        # faults injected on the bus are reported (a frame of ours lost or unacknowledged)
        self.buses = {name: can.Bus(**kw, receive_own_messages=True, fault_events=True,
                                    on_fault_event=self._on_bus_fault) for name, kw in cfg.can.items()}
        self.notifiers = [can.Notifier(bus, [self._on_frame], timeout=0.1) for bus in self.buses.values()]
        self.uds: UdsServer | None = None
        self.uds_stack: isotp.NotifierBasedCanStack | None = None

    # -- life ----------------------------------------------------------------------------------

    def run(self) -> None:
        if self.cfg.uds:
            self._start_uds()
        try:
            while not self.stop.is_set():
                self.phase.clear()
                self.reason = ""
                self.boots += 1
                self._boot()
        finally:
            self._shutdown()

    def power_off(self, *_: Any) -> None:
        self.reason = "power off"
        self.stop.set()
        self.phase.set()

    def _boot(self) -> None:
        if self.cfg.bootloader_port and self.cfg.boot0 and not self._stm32_bootloader():
            return
        flash = self.flash.image_area()
        if is_machine_code(flash):
            if self.flash.device != PART.device:
                self._halt(f"boot: machine code runs on the emulated {PART.device.name} only (part "
                           f"{PART.device.pid:#05x}); this MCU is {self.flash.device.name}; halted")
                return
            self._run_machine()
            return
        try:
            image = parse(flash)
        except ImageError as exc:
            self._halt(f"boot: invalid image: {exc}; staying in bootloader")
            return
        self._run_app(image)

    def _stm32_bootloader(self) -> bool:
        """AN3155 until Go; True to continue booting the image, False if the phase ended."""
        assert self.cfg.bootloader_port is not None  # entered only with one (_boot)
        port = self.ports[self.cfg.bootloader_port]
        shared = self.cfg.bootloader_port == self.cfg.console
        self.console.muted = shared
        emit("state", state="stm32-bootloader", boot=self.boots)
        if not shared:
            self.console.line("boot: BOOT0 high, system bootloader waiting for 0x7F")
        try:
            address = Bootloader(port, self.system, self.phase).serve()
        except Stopped:
            return False
        except SystemReset:  # new option bytes: the run loop boots again
            emit("state", state="reset", reason="option bytes changed", boot=self.boots)
            return False
        finally:
            self.console.muted = False
        if address != self.flash.device.flash_start:
            self._halt(f"boot: go {address:#010x}: no image starts there; halted")
            return False
        return True

    def _halt(self, why: str) -> None:
        self.console.line(why)
        emit("state", state="bootloader", reason=why, boot=self.boots)
        self.phase.wait()

    def _run_machine(self) -> None:
        """Run the machine code in flash on the emulated STM32F103 until power off or a fault."""
        from hil.cortexm.core import Machine
        from hil.cortexm.elf import Symbols

        cfg = self.cfg
        bus_name = next(iter(self.buses), None)
        machine = Machine(self.flash, console=self.console.write, console_baud=cfg.baudrate,
                          diagnostic=self.console.line, can_bus=self.buses.get(bus_name) if bus_name else None,
                          can_bitrate=cfg.can[bus_name].get("bitrate") if bus_name else None,
                          symbols=Symbols.from_file(cfg.elf) if cfg.elf else None, gdb_port=cfg.gdb_port)
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # the bus's receive thread gets the GIL from the core soon
        gc.freeze()  # what is loaded by now stays: a full collection then walks only what the core made since
        # frames reach the core as they arrive: it takes each at its end of frame in core time and
        # counts its own lateness (holding them here cost a spin per frame, and a core holding the
        # GIL made the hold itself late)
        held = {bus: bus.hold for bus in self.buses.values() if isinstance(bus, SimCanBus)}
        for bus in held:
            bus.hold = False
        done = threading.Event()
        reader = threading.Thread(target=self._console_input, args=(machine, done), daemon=True, name="console-rx")
        self.app = machine
        emit("state", state="app", name="cortex-m", version="", boot=self.boots)
        reader.start()
        try:
            machine.run(self.phase, on_fault=self._on_fault)  # a faulted core stays halted until reset
        finally:
            self.app = None
            for bus, hold in held.items():
                bus.hold = hold
            done.set()
            reader.join()

    def _on_fault(self, fault: Fault) -> None:
        for line in fault.lines:
            self.console.line(line)
        emit("state", state="fault", reason=fault.summary, boot=self.boots)

    def _console_input(self, machine: Machine, done: threading.Event) -> None:
        """What is typed into the console reaches the machine's USART."""
        port = self.ports.get(self.cfg.console) if self.cfg.console is not None else None
        while port is not None and not done.is_set():
            try:
                data = port.read(64)
            except (serial.SerialException, OSError):
                return
            if data:
                machine.console_input(data)

    def _run_app(self, image: Image) -> None:
        self.console.line(f"boot: image {image.name} {image.version} crc32 {image.crc32:#010x} ok, starting")
        try:
            app = self._load(image)
        except Exception as exc:
            traceback.print_exc()
            self._halt(f"boot: image {image.name} {image.version} does not start: {type(exc).__name__}: {exc}")
            return
        self.app = app  # receiving before reporting ready, so no frame sent on "ready" is missed
        emit("state", state="app", name=image.name, version=image.version, boot=self.boots)
        try:
            app.run(self.phase)
        except Exception as exc:
            traceback.print_exc()
            self.app = None
            self._halt(f"fault: {type(exc).__name__}: {exc}; halted until reset")
            return
        finally:
            self.app = None
        if self.reason == "programming":  # stay stopped until a reset (ECUReset, session end, power)
            self.phase.clear()
            if not self.stop.is_set():
                self._halt("boot: programming session, application stopped")

    def _load(self, image: Image) -> Mcu:
        """Unpack the payload, import the entry module from it and call its setup(mcu)."""
        files = image.files()
        manifest = json.loads(files["manifest.json"])
        archive = Path(self.cfg.work_dir) / f"{self.cfg.name}-boot{self.boots}.zip"
        archive.write_bytes(image.payload)
        module_name, func = manifest["entry"].split(":")
        for name in [n for n, m in sys.modules.items()
                     if (getattr(m, "__file__", None) or "").startswith(str(Path(self.cfg.work_dir)))]:
            del sys.modules[name]  # the previous boot's image
        sys.path[:] = [p for p in sys.path if not p.startswith(str(Path(self.cfg.work_dir)))]
        sys.path.insert(0, str(archive))
        module = importlib.import_module(module_name)
        dbc = _load_dbc(files, manifest["dbc"])
        config = {**manifest["config"], **self.cfg.config}
        bus = next(iter(self.buses.values()), None)
        mcu = Mcu(self.cfg.name, bus, self.console.line, config, dbc, manifest["tick_hz"])
        mcu.buses = self.buses
        getattr(module, func)(mcu)
        return mcu

    def _on_frame(self, msg: can.Message) -> None:
        app = self.app
        if app is not None:
            app.receive(msg)

    def _on_bus_fault(self, event: FaultEvent) -> None:
        app = self.app
        if app is not None and hasattr(app, "fault_event"):
            app.fault_event(event.kind, event.id, event.t_ns)

    # -- UDS -----------------------------------------------------------------------------------

    def _start_uds(self) -> None:
        import isotp

        u = self.cfg.uds
        assert u is not None  # started only for a UDS config (run)

        def send(response: bytes) -> None:
            assert self.uds_stack is not None  # made below, before a request can come
            self.uds_stack.send(response)

        hooks = EcuHooks(software_version=self._valid_version, enter_programming=self._enter_programming, send=send)
        self.uds = UdsServer(self.flash, key_function(u["key"]), u["level"], hooks)
        bus = self.buses[u["bus"]]
        notifier = self.notifiers[list(self.buses).index(u["bus"])]
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, rxid=u["rx_id"], txid=u["tx_id"])
        self.uds_stack = isotp.NotifierBasedCanStack(bus, notifier, address=address, params=isotp_params())
        self.uds_stack.start()
        threading.Thread(target=self._serve_uds, daemon=True, name="uds").start()

    def _serve_uds(self) -> None:
        stack, uds = self.uds_stack, self.uds
        assert stack is not None and uds is not None  # _start_uds made both before this thread
        while not self.stop.is_set():
            request = stack.recv(block=True, timeout=0.1)
            if request is None:
                uds.expire(time.monotonic())
            elif (response := uds.handle(bytes(request))) is not None:
                stack.send(response)
            if uds.reset_requested:
                why, uds.reset_requested = uds.reset_requested, None
                self._wait_sent()
                self.reason = "reset"
                self.console.line(f"boot: {why}")
                self.phase.set()

    def _wait_sent(self) -> None:
        assert self.uds_stack is not None  # waited on by the UDS server only
        while self.uds_stack.transmitting() and not self.stop.is_set():
            self.stop.wait(0.001)

    def _valid_version(self) -> str | None:
        try:
            return parse(self.flash.image_area()).version
        except ImageError:
            return None

    def _enter_programming(self) -> None:
        if self.app is not None:
            self.reason = "programming"
            self.phase.set()

    def _shutdown(self) -> None:
        if self.uds_stack is not None:
            self.uds_stack.stop()
        for notifier in self.notifiers:
            notifier.stop()
        for bus in self.buses.values():
            bus.shutdown()
        for port in self.ports.values():
            port.close()


def _load_dbc(files: dict[str, bytes], names: list[str]) -> Any:
    """The image's DBC files as one database, read as hil reads every DBC (None when it has none)."""
    from hil.dbc import load_dbc_data

    return load_dbc_data({name: files[name] for name in names}) if names else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hil.firmware CONFIG.json", file=sys.stderr)
        return 2
    proc = McuProcess(McuConfig.from_file(argv[0]))
    signals.as_server(proc.power_off, interrupt=True)  # its own session (the leash's): a SIGINT is meant
    proc.run()
    return 0
