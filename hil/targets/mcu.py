"""Microcontroller targets: the emulated MCU (a process per MCU) and a real MCU on the bench.

Both take exactly one firmware component, check its image (built from a stub folder if need be)
against the component's version, and flash it with the method the rig names (``stm32-uart``,
``uds``, ``command`` or a plugin's: :mod:`hil.flash`). The emulated MCU (``hil.firmware`` under its
leash, which ends it with the controller, and ends with it) keeps its flash in
``RUN_DIR/targets/NAME/flash.bin``, so a reset or power cycle boots what was flashed. Ready means:
the MCU reported that its image booted (an image refused at boot fails at once with the console's
reason), and the component's own ready condition, if any, holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil import clock, registry
from hil.cortexm import config as cortexm_config
from hil.cortexm.part import is_machine_code
from hil.errors import DeployError, FlashError
from hil.firmware.build import load_image
from hil.firmware.flashmem import FlashMemory
from hil.firmware.image import Image, ImageError, RawImage
from hil.firmware.mcu import McuConfig
from hil.flash import FlashJob, FlashMethod, FlashProgress, no_progress
from hil.protocol import an3155
from hil.lifecycle.children import Child, python_argv, spawn
from hil.spec.rig import McuTarget, Rig, UdsFlash
from hil.spec.stack import Component, FirmwareComponent
from hil.targets import bundle as bundles
from hil.targets.base import State, Target
from hil.targets.hpc import crashed
from hil.targets.ready import Check, make_check, wait_ready
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.buses import RigBuses

GRACE_S = 5.0
BOOT_TIMEOUT_NS = 30_000_000_000


def firmware_component(target: str, components: Mapping[str, Component]) -> tuple[str, FirmwareComponent]:
    """The one firmware component mapped to ``target``."""
    firmware = {n: c for n, c in components.items() if isinstance(c, FirmwareComponent)}
    if len(firmware) != 1 or len(components) != len(firmware):
        got = ", ".join(f"{n} ({c.kind})" for n, c in components.items()) or "none"
        raise DeployError(f"target {target!r}: an MCU runs exactly one firmware component, got: {got}")
    return next(iter(firmware.items()))


def emulated_image_problem(image: Image | RawImage, name: str) -> str | None:
    """Why an emulated MCU cannot run ``image`` (None: it can): a raw image must be Cortex-M machine
    code for the emulated part."""
    if isinstance(image, RawImage) and not is_machine_code(image.data):
        return (f"{name} is neither hil firmware nor a Cortex-M image for the emulated STM32F103 (no vector "
                "table at its start: initial SP in RAM, reset vector in flash)")
    return None


def checked_image(target: str, name: str, comp: FirmwareComponent) -> Image | RawImage:
    """The component's image; its version must be the one the stack names (a raw image's is).
    Machine code gets the component's ``config`` written into its configuration block."""
    image = load_image(comp.image)
    if isinstance(image, RawImage):
        try:
            data = cortexm_config.apply(image.data, comp.config, comp.image.name)
            return dataclasses.replace(image, version=comp.version, data=data)
        except (ImageError, cortexm_config.ConfigError) as exc:  # the version names the file written
            raise DeployError(f"target {target!r}: component {name!r}: {exc}") from None
    if image.version != comp.version:
        raise DeployError(f"target {target!r}: component {name!r} expects firmware version {comp.version!r}, "
                          f"but {comp.image} is {image.name} {image.version!r}")
    return image


class _McuTarget(Target):
    """What both MCU drivers share: the component, its image, the flash step, ready checks."""

    def __init__(self, name: str, spec: McuTarget, *, rig: Rig, buses: RigBuses, run_dir: Path,
                 on_console: Callable[[ConsoleLine], None] | None = None, progress: FlashProgress = no_progress):
        super().__init__(name, on_console)
        self.spec = spec
        self.rig = rig
        self.buses = buses
        self.dir = Path(run_dir).resolve() / "targets" / name  # its process runs in there
        self.progress = progress
        self._checks: dict[str, Check] = {}

    def _prepare(self, name: str, components: Mapping[str, Component], bundle: Path | None) -> Path:
        """The image to flash, written into the target's folder. From ``bundle`` when given: the
        component's files are unpacked and every checksum verified first (BundleError)."""
        self.comp_name, self.comp = firmware_component(name, components)
        self.dir.mkdir(parents=True, exist_ok=True)
        comp = self.comp
        if bundle is not None:
            unpacked = self.dir / "bundle"
            shutil.rmtree(unpacked, ignore_errors=True)
            bundles.unpack(bundle, unpacked, [self.comp_name])
            comp = comp.model_copy(update={"image": unpacked / bundles.FILES / self.comp_name / comp.image.name})
        self.image = checked_image(name, self.comp_name, comp)
        self.elf = comp.image if comp.image.suffix.lower() == ".elf" else None
        path = self.dir / f"{self.image.name}-{self.image.version}{self.image.suffix}"
        path.write_bytes(self.image.to_bytes())
        return path

    def _arm(self, checks: dict[str, Check]) -> None:
        """Arm ``checks`` plus the component's own ready condition (on the MCU console's lines)."""
        if self.comp.ready is not None:
            source = self.spec.console or self.comp_name
            checks[self.comp_name] = make_check(self.comp.ready, source, self.log, self.buses)
        self._checks = checks
        for check in checks.values():
            check.arm()

    def _wait_ready(self, timeout_ns: int | None) -> None:
        pending, self._checks = self._checks, {}
        wait_ready(self.name, pending, self.log, self._alive, timeout_ns, console=self.spec.console)

    def _stop(self) -> None:
        for check in self._checks.values():
            check.close()
        self._checks = {}
        self._power_down()

    def _power_down(self) -> None:
        """Whatever stop does beyond closing the checks."""

    def _flash(self, image_path: Path) -> None:
        """Flash with the rig's method (``hil.flash``); the MCU is powered the way it needs."""
        assert self.spec.flash is not None  # flashed only with a flash method (see _deploy)
        self._method().flash(FlashJob(self.name, self.spec.flash, self.image, image_path, self.rig, self.buses,
                                      self.dir, self.spec.emulated, self.progress))

    def _method(self) -> FlashMethod:
        assert self.spec.flash is not None  # asked only with a flash method (see _deploy)
        return registry.FLASH.implementation(self.spec.flash.method)()

    @contextlib.contextmanager
    def _flash_uart(self) -> Iterator[None]:
        """While flashing over the console's own UART, the flasher is its only reader."""
        console, flash = self.spec.console, self.spec.flash
        shared = console if console is not None and flash is not None and flash.bus == console else None
        if shared is not None:
            self.release_console()
        try:
            yield
        finally:
            if shared is not None:
                self.capture_console(self.buses, shared)


class EmulatedMcuTarget(_McuTarget):
    """An emulated MCU: ``python -m hil.firmware`` with flash, console pty and simbus CAN."""

    def __init__(self, name: str, spec: McuTarget, **kw: Any):
        super().__init__(name, spec, **kw)
        self.flash_path = self.dir / "flash.bin"
        self.device = an3155.DEVICES[spec.part or an3155.DEFAULT_PID]
        self.proc: Child | None = None
        self._states: list[dict] = []
        self._started = 0  # state events before the last start
        self._cond = threading.Condition()

    # -- life cycle hooks ----------------------------------------------------------------------

    def _deploy(self, components: Mapping[str, Component], bundle: Path | None = None) -> None:
        image_path = self._prepare(self.name, components, bundle)
        if (why := emulated_image_problem(self.image, image_path.name)) is not None:
            raise DeployError(f"target {self.name!r}: {why}")
        if self.spec.console is not None:
            self.capture_console(self.buses, self.spec.console)
        flash = self.spec.flash
        if flash is None:  # no flashing protocol: programmed directly, as a debug probe would
            memory = FlashMemory(self.flash_path, self.device)
            try:
                memory.mass_erase()
                memory.program(memory.device.flash_start, self.image.to_bytes())
            except ValueError as exc:  # a write-protected page
                raise FlashError(f"target {self.name!r}: programming the flash failed: {exc}") from None
        elif not self._method().live(flash):  # runs with the MCU off
            self._flash(image_path)
        else:
            self._flash_live(image_path)

    def _flash_live(self, image_path: Path) -> None:
        """Boot the MCU in the mode the method needs, flash through its bootloader, power it off.

        Every method but UDS talks to the AN3155 bootloader on a UART, so the MCU comes up with
        BOOT0 high (what ``enter: rts-dtr`` or a jumper does on a real board)."""
        since = self.states_seen
        with self._flash_uart():
            self._spawn(boot0=self._method().boot0)
            try:
                self._wait_powered(since)
                self._flash(image_path)
            finally:
                self._terminate(GRACE_S)

    def _wait_powered(self, since: int) -> None:
        """Until the MCU process reports its first state (its bootloaders listen from then on)."""
        deadline = time.monotonic() + BOOT_TIMEOUT_NS / 1e9
        with self._cond:
            while len(self._states) <= since:
                self._alive()
                if time.monotonic() > deadline:
                    raise DeployError(f"target {self.name!r}: the emulated MCU did not come up within "
                                      f"{BOOT_TIMEOUT_NS // 1_000_000_000} s")
                self._cond.wait(0.1)

    def _start(self) -> None:
        self._arm({"boot": BootCheck(self, self.comp.ready.timeout if self.comp.ready else BOOT_TIMEOUT_NS)})
        self._started = self.states_seen
        self._spawn(boot0=False)

    def _power_down(self) -> None:
        self._terminate(GRACE_S)

    def _power_off(self) -> None:
        self._terminate(0)

    def _power_on(self) -> None:
        if self.proc is None and self.state in (State.DEPLOYED, State.RUNNING, State.READY):
            self._start()  # boots from the flash it kept; wait_ready waits for that boot

    def reset(self, boot0: bool = False) -> None:
        """Pull the reset line (BOOT0 as given): the MCU restarts and boots from its flash."""
        self._terminate(0)
        self._spawn(boot0=boot0)

    # -- the MCU process -----------------------------------------------------------------------

    def wait_state(self, state: str, since: int, timeout_s: float) -> dict | None:
        """The first state event ``state`` numbered ≥ ``since`` (or a 'bootloader' one), or None."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for event in self._states[since:]:
                    if event["state"] in (state, "bootloader"):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def states_seen(self) -> int:
        with self._cond:
            return len(self._states)

    def _config(self, boot0: bool) -> McuConfig:
        spec, rig = self.spec, self.rig
        can_buses = [b for b in spec.buses if rig.buses[b].kind == "can"]
        uds = None
        if isinstance(spec.flash, UdsFlash):  # method "uds" (a built-in: no plugin replaces it)
            can_buses.append(spec.flash.bus)
            uds = {"bus": spec.flash.bus, "rx_id": spec.flash.tx_id, "tx_id": spec.flash.rx_id,
                   "key": spec.flash.key, "level": spec.flash.security_level}
        bootloader_port = None
        if spec.flash is not None and spec.flash.method != "uds" and spec.flash.bus is not None:
            bootloader_port = self.buses.serial_port(spec.flash.bus, side="device")
        console = self.buses.serial_port(spec.console, side="device") if spec.console else None
        return McuConfig(name=self.name, flash_path=str(self.flash_path), work_dir=str(self.dir), boot0=boot0,
                         pid=self.device.pid,
                         console=console, bootloader_port=bootloader_port,
                         can={b: self.buses.can_config(b, side="device") for b in dict.fromkeys(can_buses)},
                         uds=uds, config=dict(self.comp.config), elf=str(self.elf) if self.elf else None)

    def _spawn(self, boot0: bool) -> None:
        if self.serial_console is not None:
            self.serial_console.step()
        cfg_path = self.dir / "mcu.json"
        cfg_path.write_text(self._config(boot0).to_json())
        self.proc = spawn(python_argv("hil.firmware", str(cfg_path)), what=f"emulated MCU {self.name!r}", leash=True,
                          cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.read_lines({"stdout": self._on_event, "stderr": self._on_stderr}, f"{self.name}-mcu")

    def _on_event(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            self.console(ConsoleLine(clock.now_ns(), self.comp_name, text, "stdout"))
            return
        if event.get("kind") == "console":
            self.console(ConsoleLine(event["t_ns"], self.comp_name, event["text"], "stdout"))
        elif event.get("kind") == "state":
            with self._cond:
                self._states.append(event)
                self._cond.notify_all()

    def _on_stderr(self, text: str) -> None:
        self.console(ConsoleLine(clock.now_ns(), self.comp_name, text, "stderr"))

    def _alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.proc.drain(GRACE_S)
            raise crashed(self.name, self.comp_name, self.proc.ended(), self.log, self.state)
        with self._cond:
            fault = next((e for e in self._states[self._started:] if e["state"] == "fault"), None)
        if fault is not None:  # the core stopped on a fault: the firmware's, reported as such
            raise DeployError(f"target {self.name!r}: firmware {self.comp_name!r} stopped: {fault['reason']}")

    def _terminate(self, grace_s: float) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.stop(grace_s)
        proc.drain(GRACE_S)


class BootCheck(Check):
    """Ready once the MCU reports its application running; fails at once if it stays in the bootloader."""

    def __init__(self, target: EmulatedMcuTarget, timeout_ns: int):
        super().__init__(timeout_ns)
        self.target = target
        self.since = 0

    def arm(self) -> None:
        self.since = self.target.states_seen

    def poll(self, timeout_s: float) -> bool:
        event = self.target.wait_state("app", self.since, timeout_s)
        if event is None:
            return False
        if event["state"] == "bootloader":
            raise DeployError(f"target {self.target.name!r}: firmware did not start: {event['reason']}")
        return True

    def describe(self) -> str:
        return "the MCU to report its application running"


class RealMcuTarget(_McuTarget):
    """A microcontroller on the bench: flashed over its UART bootloader, UDS or a flasher command."""

    def _deploy(self, components: Mapping[str, Component], bundle: Path | None = None) -> None:
        image_path = self._prepare(self.name, components, bundle)
        if self.spec.flash is None:
            raise DeployError(f"target {self.name!r}: a real MCU needs a 'flash' method in the rig")
        if self.spec.console is not None:
            self.capture_console(self.buses, self.spec.console)
        with self._flash_uart():
            self._flash(image_path)

    def _start(self) -> None:
        self._arm({})
