"""The rig: buses, targets and power switches — a passive description, no behaviour."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, ValidationInfo, field_validator

from hil import registry
from hil.spec.common import (KNOWN_HOSTS, SPEC_FILE, SSH_KEY, Arg, CanId, Duration, JsonObject, Line, Name,
                             PositiveDuration, Spec, SpecPath, Text)
from hil.spec.faults import Fault, fault_problems
from hil.spec.registered import Registered

if TYPE_CHECKING:
    from hil.protocol.an3155 import Stm32Device

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

CLASSIC_BITRATES = (10_000, 1_000_000)
HOST_RE = r"^[A-Za-z0-9_][A-Za-z0-9_.:%-]{0,252}$"  # a host name, an IPv4 or IPv6 address; never an option
USER_RE = r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"
FLASH_FIELDS = ("image", "target", "port", "baudrate")  # what a command flasher's argv may name
KEY_MODULE_RE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
DATA_BITRATES = (10_000, 12_000_000)
MAX_PAGES = 0xFFF0  # Extended Erase: page numbers from 0xFFF0 up are special codes
PORT_NAME_RE = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"  # no dots: a stimulus map names TARGET.PORT


SLCAN_BITRATES = {10_000: "S0", 20_000: "S1", 50_000: "S2", 100_000: "S3", 125_000: "S4", 250_000: "S5",
                  500_000: "S6", 750_000: "S7", 1_000_000: "S8"}  # LAWICEL's bitrate commands
ADAPTERS = ("slcan", "socketcand")  # interfaces hil can emulate as a USB-CAN adapter / server
LOOPBACK = ("127.0.0.1", "localhost")


class EmulatedAdapter(Spec):
    """What makes the emulated USB-CAN adapter of an ``emulated`` bus with an ``interface`` hard,
    like the real one: its oscillator's drift and its USB-style batched delivery."""

    drift_ppm: StrictFloat | StrictInt = Field(0, ge=-1000, le=1000, description="the adapter clock's drift")
    batch: Duration = Field(1_000_000, description="frames reach the host in batches this long apart "
                                                   "(a USB frame: 1 ms; 0: each at once)")

    @field_validator("batch")
    @classmethod
    def _batch(cls, value: int) -> int:
        if value > 100_000_000:
            raise ValueError(f"expected a batch interval of at most 100ms, got {value / 1e6:g}ms")
        return value


class CanBus(Spec):
    """A CAN or CAN FD bus: a python-can interface + channel, or emulated by simbus — reached by the
    controller directly (``simcan``) or, with ``interface`` and ``channel``, through an emulated
    adapter (``slcan``, ``socketcand``) exactly as a lab reaches the real one."""

    kind: Literal["can"]
    emulated: StrictBool = False
    interface: Line | None = Field(None, description="python-can interface name (socketcan, pcan, ...)")
    channel: Line | StrictInt | None = None
    bitrate: StrictInt = Field(500_000, description="nominal bitrate, bit/s")
    fd: StrictBool = False
    data_bitrate: StrictInt | None = Field(None, description="CAN FD data-phase bitrate, bit/s")
    wire_model: StrictBool = Field(True, description="emulated: model frame duration and arbitration")
    faults: list[Fault] = Field(default_factory=list, description="emulated: faults always armed")
    options: JsonObject = Field(default_factory=dict, description="extra python-can Bus kwargs")
    adapter: EmulatedAdapter | None = Field(None, description="emulated adapter: drift and batching")
    record: StrictBool = True

    @field_validator("bitrate")
    @classmethod
    def _nominal_range(cls, value: int) -> int:
        lo, hi = CLASSIC_BITRATES
        if not lo <= value <= hi:
            raise ValueError(f"expected a bitrate in {lo}..{hi} bit/s, got {value}")
        return value


class SerialBus(Spec):
    """A serial link: a pyserial port, or an emulated pty pair."""

    kind: Literal["serial"]
    emulated: StrictBool = False
    port: Line | None = Field(None, description="pyserial port (path or URL)")
    baudrate: StrictInt = Field(115_200, ge=50, le=12_000_000)
    pace: StrictBool = Field(True, description="emulated: never faster than the baud rate")
    record: StrictBool = True


PortName = Annotated[str, Field(pattern=PORT_NAME_RE, description="a port's name: letter first, then letters, "
                                                                    "digits, _ and - (≤ 32)")]
Ports = dict[PortName, Annotated[StrictInt, Field(ge=1, le=65535)]]


class EthernetBus(Spec):
    """A network the stack is reached on: a host interface and hil's address on it (real), or
    loopback addresses (emulated: traffic never leaves this machine). ``ports`` are the UDP ports
    hil listens on at its address: what the stack sends there is recorded."""

    kind: Literal["ethernet"]
    emulated: StrictBool = False
    interface: Line | None = Field(None, description="real: the host's network interface (eth1, enp3s0, ...)")
    address: Line | None = Field(None, description="hil's IPv4 address on the network (emulated: default "
                                                   "127.0.N.1, N counting the rig's ethernet buses from 1)")
    ports: Ports = Field(default_factory=dict, description="UDP ports hil listens on and records: name → port")
    record: StrictBool = True


Bus = Annotated[CanBus | SerialBus | EthernetBus, Field(discriminator="kind")]


class NetworkAttachment(Spec):
    """A target on a network: its address and the UDP ports its components listen on."""

    address: Line | None = Field(None, description="the target's IPv4 address (emulated: default 127.0.N.(2+i), "
                                                   "i counting the network's targets)")
    ports: Ports = Field(default_factory=dict, description="name → UDP port a component listens on")


class PowerSpec(Spec):
    """Base of every power switch's model (``hil.power``): ``kind`` names the switch."""

    kind: str


class CommandPower(PowerSpec):
    """A power switch driven by commands (argv lists, run without a shell)."""

    kind: Literal["command"]
    on: list[Arg] = Field(min_length=1)
    off: list[Arg] = Field(min_length=1)
    cycle: list[Arg] | None = Field(None, min_length=1)
    timeout: PositiveDuration = 10_000_000_000
    off_time: Duration = Field(1_000_000_000, description="pause between off and on when cycling without 'cycle'")


class EmulatedPower(PowerSpec):
    """Power for emulated targets: off kills the target's processes, on boots it again."""

    kind: Literal["emulated"]


PowerSwitch = Annotated[CommandPower | EmulatedPower | PowerSpec, Registered(registry.POWER)]


class LocalReach(Spec):
    """Processes run on this host, in a sandbox folder per run (the emulated HPC)."""

    via: Literal["local", "emulated"]


class SshReach(Spec):
    """Processes run on a remote Linux host reached with SSH (key auth, host key checked)."""

    via: Literal["ssh"]
    host: str = Field(pattern=HOST_RE, description="host name or IP address")
    user: str = Field(pattern=USER_RE, description="login name")
    port: StrictInt = Field(22, ge=1, le=65535)
    known_hosts: Annotated[SpecPath, KNOWN_HOSTS]
    identity: Annotated[SpecPath, SSH_KEY] | None = Field(None, description="private key; the SSH agent when absent")
    workdir: Line = Field("/tmp/hil", description="absolute folder on the host, without '..'")
    python: Line = Field("python3", min_length=1,
                         description="the remote Python that '{python}' in a component's argv names")
    connect_timeout: Duration = Field(120_000_000_000, description="keep retrying a refused or unreachable "
                                      "host this long (it may be booting after a power cycle)")

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str) -> str:
        if not value.startswith("/") or ".." in value.split("/") or len(value) > 1024:
            raise ValueError(f"expected an absolute folder without '..' (at most 1024 characters), got {value[:60]!r}")
        return value


Reach = Annotated[LocalReach | SshReach, Field(discriminator="via")]


class FlashRun(Spec):
    """``count`` erase units (pages or sectors) of ``size`` bytes, one after the other."""

    count: StrictInt = Field(ge=1, le=65_536)
    size: StrictInt = Field(ge=128, le=1 << 24, description="bytes, a power of two (128 B .. 16 MiB)")

    @field_validator("size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"expected a power of two such as 2048 or 131072, got {value}")
        return value


class FlashGeometry(Spec):
    """The flash of a part hil's device table lacks (or describes differently): its product id as
    Get ID answers it, where its flash starts and its erase units in address order."""

    pid: StrictInt = Field(ge=0, le=0xFFFF, description="the product id the bootloader's Get ID returns")
    flash_start: StrictInt = Field(0x0800_0000, ge=0, le=0xFFFF_FFFF)
    layout: list[FlashRun] = Field(min_length=1, max_length=64,
                                   description="runs of equal pages or sectors, in address order")

    @field_validator("layout")
    @classmethod
    def _addressable(cls, runs: list[FlashRun], info: ValidationInfo) -> list[FlashRun]:
        pages, size = sum(r.count for r in runs), sum(r.count * r.size for r in runs)
        if pages > MAX_PAGES:
            raise ValueError(f"expected at most {MAX_PAGES} pages (Extended Erase numbers them in 16 bits), "
                             f"got {pages}")
        end = info.data.get("flash_start", 0) + size
        if end > 1 << 32:
            raise ValueError(f"expected a flash inside the 32-bit address space, but it would end at {end:#x}")
        return runs

    def device(self) -> Stm32Device:
        """The part as the AN3155 client sees it."""
        from hil.protocol.an3155 import from_geometry

        return from_geometry(self.pid, self.flash_start, tuple((run.count, run.size) for run in self.layout))


class FlashSpec(Spec):
    """Base of every flash method's model (``hil.flash``): ``method`` names it; ``bus`` is the rig
    bus it flashes over, of kind :attr:`bus_kind`, if any."""

    method: str
    bus: Name | None = None
    bus_kind: ClassVar[str] = "serial"

    def problems(self) -> list[Problem]:
        """What one field cannot say about these settings (locations inside ``flash``)."""
        return []


class Stm32UartFlash(FlashSpec):
    """ST AN3155 UART bootloader on a serial bus."""

    method: Literal["stm32-uart"]
    bus: Name
    address: StrictInt = Field(0x0800_0000, ge=0, le=0xFFFF_FFFF)
    enter: Literal["emulated", "rts-dtr", "manual"] = "emulated"
    geometry: FlashGeometry | None = Field(None, description="the flash layout of a part hil's device table lacks")


class UdsFlash(FlashSpec):
    """UDS (ISO 14229) download over ISO-TP on a CAN bus."""

    method: Literal["uds"]
    bus: Name
    bus_kind: ClassVar[str] = "can"
    tx_id: CanId = Field(description="tester → ECU request id")
    rx_id: CanId = Field(description="ECU → tester response id")
    security_level: StrictInt = Field(1, ge=1, le=0x41)
    key: str = Field("xor:0x5A5A5A5A", description="seed→key algorithm: 'xor:SECRET' or 'module:function'")
    address: StrictInt = Field(0x0800_0000, ge=0, le=0xFFFF_FFFF, description="where the image is downloaded to")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        kind, sep, arg = value.partition(":")
        if kind == "xor":
            try:
                secret = int(arg, 0)
            except ValueError:
                secret = -1
            if not 0 <= secret < 1 << 256:
                raise ValueError(f"expected 'xor:SECRET' with SECRET an integer in 0..2**256-1 such as 0x5A5A5A5A, "
                                 f"got {value!r}")
        elif not (sep and re.fullmatch(KEY_MODULE_RE, kind) and arg.isidentifier()):
            raise ValueError(f"expected 'xor:SECRET' or 'module:function' (a Python module and a function "
                             f"in it), got {value!r}")
        return value

    def key_module(self) -> str | None:
        """The module of a ``module:function`` key (None for ``xor``)."""
        kind = self.key.partition(":")[0]
        return None if kind == "xor" else kind


class CommandFlash(FlashSpec):
    """An external flasher (openocd, pyocd, esptool, st-flash, stm32flash): argv template, no shell."""

    method: Literal["command"]
    argv: list[Arg] = Field(min_length=1, description="'{image}' is replaced by the image path, '{target}' by "
                                                      "the target's name, '{port}' and '{baudrate}' by the bus's")
    bus: Name | None = Field(None, description="the serial bus the flasher talks on; a console on it is "
                                               "released while the command runs")
    timeout: PositiveDuration = 120_000_000_000

    def problems(self) -> list[Problem]:
        """A placeholder that is nearly one of the fields is a typo (it would be passed on as it
        is); ``{port}`` and ``{baudrate}`` need the bus they come from."""
        for i, arg in enumerate(self.argv):
            for word in re.findall(r"\{([A-Za-z_]+)\}", arg):
                near = difflib.get_close_matches(word, FLASH_FIELDS, n=1, cutoff=0.6)
                if word not in FLASH_FIELDS and near:
                    return [(("argv", i), f"unknown placeholder '{{{word}}}'; did you mean '{{{near[0]}}}'? "
                                          f"the flasher gets: {', '.join('{' + f + '}' for f in FLASH_FIELDS)}")]
        if self.bus is None:
            for i, arg in enumerate(self.argv):
                if "{port}" in arg or "{baudrate}" in arg:
                    return [(("argv", i), "'{port}' and '{baudrate}' need the flash 'bus' they come from")]
        return []


Flash = Annotated[Stm32UartFlash | UdsFlash | CommandFlash | FlashSpec, Registered(registry.FLASH)]


class TargetSpec(Spec):
    """Base of every target's model (``hil.target``): ``kind`` names it; ``buses``, ``console``
    and ``power`` are checked against the rig. ``runs`` is the component kind it runs."""

    kind: str
    buses: list[Name] = Field(default_factory=list)
    console: Name | None = None
    power: Name | None = None
    runs: ClassVar[str] = "process"

    def driver(self) -> str:
        """The ``hil.target`` entry that drives this target: by default its kind."""
        return self.kind

    def problems(self, rig: Rig) -> list[Problem]:
        """What one field cannot say, checked against ``rig`` (locations inside the target)."""
        return []


class HpcTarget(TargetSpec):
    """A Linux computer that runs the stack's processes."""

    kind: Literal["hpc"]
    reach: Reach
    networks: dict[Name, NetworkAttachment] = Field(default_factory=dict, description="ethernet bus → the "
                                                    "target's address and ports on it (HIL_NETS)")

    def driver(self) -> str:
        return "hpc-ssh" if self.reach.via == "ssh" else "hpc-local"


class McuTarget(TargetSpec):
    """A microcontroller that runs a firmware image."""

    kind: Literal["mcu"]
    emulated: StrictBool = False
    part: StrictInt | None = Field(None, description="emulated: the STM32 part it is, by product id (default "
                                                       "0x414, an STM32F103 high-density)")
    flash: Flash | None = None
    runs: ClassVar[str] = "firmware"

    def driver(self) -> str:
        return "mcu-emulated" if self.emulated else "mcu-real"

    def problems(self, rig: Rig) -> list[Problem]:
        """An emulated MCU runs on the run clock (emulated buses, a pty console), is a part hil
        emulates; the flash bus is of the kind the method needs."""
        out: list[Problem] = []
        if self.emulated:
            out += [(("buses", i), f"an emulated MCU runs on the run clock and needs emulated buses; {bus!r} "
                                   "is a real one") for i, bus in enumerate(self.buses)
                    if bus in rig.buses and not rig.buses[bus].emulated]
            if self.console is not None and not getattr(rig.buses.get(self.console), "emulated", True):
                out.append((("console",), f"an emulated MCU's console is a pty: {self.console!r} is a real port"))
        if self.flash is not None:
            flash = [(("flash", *at), msg) for at, msg in self.flash.problems()]
            if self.flash.bus is not None and not flash:
                flash = rig.expect_bus(("flash", "bus"), self.flash.bus, self.flash.bus_kind)
            out += flash
        return out + _part_problems(self)


RigTarget = Annotated[HpcTarget | McuTarget | TargetSpec, Registered(registry.TARGETS)]


class Rig(Spec):
    """One bench setup."""

    name: Name
    description: Text = ""
    tags: list[Line] = Field(default_factory=list, description="free-form capabilities")
    buses: dict[Name, Bus] = Field(min_length=1)
    targets: dict[Name, RigTarget] = Field(default_factory=dict)
    power: dict[Name, PowerSwitch] = Field(default_factory=dict)
    health: Annotated[SpecPath, SPEC_FILE] | None = Field(None, description="suite whose first bench checks rig health")

    @property
    def emulated(self) -> bool:
        return all(b.emulated for b in self.buses.values())

    def problems(self) -> list[Problem]:
        """Cross-reference checks that a single field cannot express."""
        out: list[Problem] = []
        for name, bus in self.buses.items():
            out += _bus_problems(("buses", name), bus)
        seen: dict[str, str] = {}
        for section in ("buses", "targets", "power"):
            for name in getattr(self, section):
                if name in seen:
                    out.append(((section, name), f"name {name!r} is already used in {seen[name]}"))
                seen.setdefault(name, section)
        for name, target in self.targets.items():
            out += self._target_problems(("targets", name), target)
        from hil.net import network_problems

        return out + network_problems(self)

    def _target_problems(self, loc: Loc, t: TargetSpec) -> list[Problem]:
        out: list[Problem] = []
        for i, bus in enumerate(t.buses):
            if bus not in self.buses:
                out.append(((*loc, "buses", i), self._unknown("bus", bus)))
            elif self.buses[bus].kind == "ethernet":
                out.append(((*loc, "buses", i), f"{bus!r} is a network: a target joins it under 'networks' "
                                                "with its address and ports"))
        if t.console is not None:
            out += self.expect_bus(loc + ("console",), t.console, "serial")
        if t.power is not None and t.power not in self.power:
            out.append(((*loc, "power"), self._unknown("power switch", t.power, "power")))
        return out + [((*loc, *at), msg) for at, msg in t.problems(self)]

    def expect_bus(self, loc: Loc, name: str, kind: str) -> list[Problem]:
        """``name`` is a bus of this rig of ``kind`` (else the problem, at ``loc``)."""
        bus = self.buses.get(name)
        if bus is None:
            return [(loc, self._unknown("bus", name))]
        if bus.kind != kind:
            return [(loc, f"expected a {kind} bus, but {name!r} is a {bus.kind} bus")]
        return []

    def _unknown(self, what: str, name: str, section: str = "buses") -> str:
        known = ", ".join(sorted(getattr(self, section))) or "none"
        return f"unknown {what} {name!r}; the rig has: {known}"


def _part_problems(t: McuTarget) -> list[Problem]:
    """An emulated MCU is a part hil emulates; a real one says what it is (Get ID). The image's
    address lies inside the rig's geometry."""
    from hil.protocol.an3155 import DEVICES, EMULATED, known_ids

    out: list[Problem] = []
    if t.part is not None and not t.emulated:
        out.append((("part",), "'part' chooses what an emulated MCU is; a real MCU tells its product id "
                                    "itself (give flash.geometry for a part hil's table lacks)"))
    elif t.part is not None and t.part not in EMULATED:
        name = f" ({DEVICES[t.part].name})" if t.part in DEVICES else ""
        out.append((("part",), f"hil does not emulate part {t.part:#05x}{name}; it emulates: "
                                    f"{known_ids(EMULATED)}"))
    flash = t.flash
    if isinstance(flash, Stm32UartFlash) and flash.geometry is not None:
        device = flash.geometry.device()
        if not device.flash_start <= flash.address < device.flash_end:
            out.append((("flash", "address"), f"address {flash.address:#010x} is outside the geometry's "
                        f"flash ({device.describe()})"))
    return out


def _bus_problems(loc: Loc, bus: CanBus | SerialBus | EthernetBus) -> list[Problem]:
    out: list[Problem] = []
    if isinstance(bus, EthernetBus):
        return out
    if isinstance(bus, SerialBus):
        if bus.emulated == (bus.port is not None):
            out.append((loc, "expected exactly one of 'port' or 'emulated: true'"))
        return out
    if bus.emulated and (bus.interface or bus.channel is not None):
        out += _adapter_problems(loc, bus)
    elif bus.adapter is not None:
        out.append((loc + ("adapter",), "'adapter' describes an emulated adapter: it needs 'emulated: true' "
                                        f"and an 'interface' ({' or '.join(ADAPTERS)})"))
    if bus.interface == "slcan" and bus.bitrate not in SLCAN_BITRATES:
        out.append((loc + ("bitrate",), f"an SLCAN adapter knows the bitrates {', '.join(map(str, SLCAN_BITRATES))} "
                                        f"(S0–S8), got {bus.bitrate}"))
    out += [((*loc, "faults", *at), msg) for at, msg in fault_problems(bus.faults, bus.fd)]
    if not bus.emulated:
        if not bus.interface:
            out.append((loc, "expected 'interface' and 'channel', or 'emulated: true'"))
        elif bus.interface not in known_can_interfaces():
            out.append((loc + ("interface",), f"unknown python-can interface {bus.interface!r}; "
                        f"known: {', '.join(sorted(known_can_interfaces()))}"))
        if bus.faults:
            out.append((loc + ("faults",), "faults can only be injected on emulated buses"))
    if bus.data_bitrate is not None:
        lo, hi = DATA_BITRATES
        if not bus.fd:
            out.append((loc + ("data_bitrate",), "data_bitrate is a CAN FD setting, but this bus has fd: false"))
        elif not max(lo, bus.bitrate) <= bus.data_bitrate <= hi:
            out.append((loc + ("data_bitrate",),
                        f"expected a data bitrate in {max(lo, bus.bitrate)}..{hi} bit/s, got {bus.data_bitrate}"))
    return out


def _adapter_problems(loc: Loc, bus: CanBus) -> list[Problem]:
    """An emulated bus reached through an emulated adapter: an interface hil emulates, a channel,
    and for socketcand a server on loopback only."""
    if bus.interface not in ADAPTERS:
        return [(loc + ("interface",), f"an emulated bus takes no 'interface' (it is reached through simcan) "
                                       f"unless through an emulated adapter: {' or '.join(ADAPTERS)}; "
                                       f"got {bus.interface!r}")]
    if bus.channel is None or bus.channel == "":
        what = "a device path" if bus.interface == "slcan" else "the CAN interface name the server serves"
        return [(loc, f"an emulated {bus.interface} adapter needs a 'channel': {what}")]
    out: list[Problem] = []
    if bus.interface == "slcan" and Path(str(bus.channel)).name in ("", ".", ".."):
        out.append((loc + ("channel",), f"expected a device path ending in a name (the emulated device is linked "
                                        f"in the run folder under it), got {bus.channel!r}"))
    if bus.interface == "socketcand":
        host, port = bus.options.get("host", LOOPBACK[0]), bus.options.get("port", 0)
        if host not in LOOPBACK:
            out.append((loc + ("options", "host"), f"an emulated socketcand server listens on 127.0.0.1 only, "
                                                   f"got {host!r}"))
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            out.append((loc + ("options", "port"), f"expected a TCP port 0..65535 (0: any free one), got {port!r}"))
    return out


def known_can_interfaces() -> set[str]:
    """python-can's built-in interface table plus every ``can.interface`` entry point."""
    from importlib.metadata import entry_points

    from can.interfaces import BACKENDS

    return set(BACKENDS) | {ep.name for ep in entry_points(group="can.interface")}
