"""Open any bus of a rig from its spec — real or emulated — through one object.

    with RigBuses(rig, run_dir) as buses:
        bus = buses.open_can("chassis", receive_own_messages=True)     # can.BusABC
        console = buses.open_serial("mcu-console")                       # serial.Serial (host end)
        env = buses.env(["chassis", "mcu-console"], side="device")       # for a child process
        buses.faults("chassis").arm({"kind": "drop", "ids": [0x100]})

Emulated CAN buses and serial links are served by one simbus broker process that lives as long as
the ``with`` block, under ``run_dir/simbus`` (0700) — or, for a rig another process holds, by that
process's broker and adapters, attached to and never started or stopped. Real buses are passed
straight to python-can / pyserial. Inside a child process, :func:`bus_from_env` opens a bus from the ``HIL_BUSES`` variable that
:meth:`RigBuses.env` produced, so targets need no knowledge of the rig.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from collections.abc import Iterable, Mapping

from hil.errors import BusError, UsageError
from hil.spec.rig import CanBus, Rig, SerialBus

if TYPE_CHECKING:
    import can
    import serial

    from hil.buses.control import BusControl
    from hil.simbus.service import BrokerProcess

ENV_VAR = "HIL_BUSES"
Side = Literal["host", "device"]


class Service(Protocol):
    """A process the buses are served by — the simbus broker or an emulated adapter: this
    process's own (:class:`hil.simbus.service.BrokerProcess`) or, joined, a held rig's
    (:class:`hil.session.held.HeldService`)."""

    what: str  # "the simbus broker", for messages
    info: dict[str, Any]  # its ready line (JSON): pid, CAN sockets, serial ttys, adapter channel or port

    @property
    def alive(self) -> bool: ...

    def ended(self) -> str: ...


class RigBuses:
    """The buses of one rig for the length of a ``with`` block."""

    def __init__(self, rig: Rig, run_dir: Path, seed: int = 0, *, joined: tuple[Service | None, Mapping[str, Service]] | None = None):
        """``joined``: the broker and adapters (by bus name) of a rig another process holds
        (:meth:`hil.session.held.Held.services`), attached to instead of started."""
        self.rig = rig
        self.run_dir = Path(run_dir).absolute()  # socket paths must work from any working directory
        self.seed = seed
        self.joined = joined is not None
        self._broker: Service | None
        self._broker, adapters = joined or (None, {})
        self._adapters: dict[str, Service] = dict(adapters)  # bus name → its emulated adapter's process
        self._controls: dict[str, BusControl] = {}
        self._started: list[BrokerProcess] = []  # what this process started, hence stops: broker, adapters

    def __enter__(self) -> RigBuses:
        from hil.simbus.service import BrokerProcess, broker_config

        if self.joined:
            return self
        config = broker_config(self.rig, self.run_dir / "simbus", self.seed)
        if config["can"] or config["serial"]:
            self._broker = self._start(BrokerProcess(config))
        try:
            for name, bus in self.rig.buses.items():
                if isinstance(bus, CanBus) and bus.emulated and bus.interface:
                    what = f"the emulated {bus.interface} adapter of bus {name!r}"
                    self._adapters[name] = self._start(BrokerProcess(
                        self._adapter_config(name, bus), module="hil.buses.adapters", what=what, name=f"adapter-{name}"))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _adapter_config(self, name: str, bus: CanBus) -> dict[str, Any]:
        """What :mod:`hil.buses.adapters` needs to serve bus ``name``'s emulated adapter; an SLCAN
        device's link lands in the run's simbus folder under the last part of the rig's device path
        (``/dev/ttyACM0`` → ``ttyACM0``): the rig a lab uses, emulated, touches nothing outside the run."""
        adapter = bus.adapter
        channel = bus.channel
        if bus.interface == "slcan":
            channel = str(self.run_dir / "simbus" / Path(str(channel)).name)
        return {"kind": bus.interface, "name": name, "dir": str(self.run_dir / "simbus"),
                "socket": self._broker_info("can")[name], "channel": channel, "bitrate": bus.bitrate,
                "data_bitrate": bus.data_bitrate, "fd": bus.fd, "port": bus.options.get("port", 0),
                "drift_ppm": adapter.drift_ppm if adapter else 0, "batch_ns": adapter.batch if adapter else 1_000_000}

    def __exit__(self, *exc: object) -> None:
        for control in self._controls.values():
            control.close()
        self._controls.clear()
        started, self._started = self._started, []  # a joined rig's services are the holder's: none here
        if not self.joined:
            self._adapters, self._broker = {}, None
        for service in reversed(started):  # the adapters, then the broker they are attached to
            service.__exit__(*exc)

    def _start(self, service: BrokerProcess) -> BrokerProcess:
        self._started.append(service.__enter__())
        return service

    def check_alive(self) -> None:
        """Raise BusError if the simbus broker ended while the rig is up (every emulated bus went with
        it), or an emulated adapter did (its bus is out of the controller's reach)."""
        if self._broker is not None and not self._broker.alive:
            raise BusError(f"the simbus broker {self._broker.ended()}; every emulated bus went down with it")
        for adapter in self._adapters.values():
            if not adapter.alive:
                raise BusError(f"{adapter.what} {adapter.ended()}")

    @property
    def broker_pid(self) -> int | None:
        """The simbus broker's process id (None when the rig has no emulated buses)."""
        return None if self._broker is None else self._broker.info["pid"]

    def attach_info(self) -> dict[str, Any]:
        """Where other processes attach to the emulated buses: the simbus broker's ready line (its
        pid, each CAN bus's socket, each serial link's ttys; None without emulated buses) and each
        emulated adapter's (its pid, SLCAN tty or socketcand port)."""
        return {"broker": None if self._broker is None else dict(self._broker.info),
                "adapters": {name: dict(a.info) for name, a in self._adapters.items()}}

    def open(self, name: str, side: Side = "host", **kw: Any) -> can.BusABC | serial.Serial:
        """Bus ``name`` whatever its kind: a ``can.BusABC`` for CAN (``side`` does not apply), a
        ``serial.Serial`` at the ``side`` end for serial. Keywords pass through."""
        if isinstance(self._spec(name, (CanBus, SerialBus)), CanBus):
            return self.open_can(name, **kw)
        return self.open_serial(name, side, **kw)

    # ---- CAN -----------------------------------------------------------------------------------

    def can_config(self, name: str, side: Side = "host") -> dict[str, Any]:
        """Keyword arguments for ``can.Bus(**cfg)`` that open bus ``name``. An emulated bus with an
        emulated adapter is reached through the adapter from the ``host`` side (as a lab reaches
        the real one) and through ``simcan`` from the ``device`` side (emulated targets)."""
        bus = self._spec(name, CanBus)
        cfg: dict[str, Any] = {"bitrate": bus.bitrate, "fd": bus.fd}
        if bus.data_bitrate is not None:
            cfg["data_bitrate"] = bus.data_bitrate
        if bus.emulated and bus.interface and side == "host":
            info = self._adapter_info(name)
            if bus.interface == "slcan":
                return {"interface": "slcan", "channel": info["channel"], **cfg, **bus.options}
            return {"interface": bus.interface, "channel": bus.channel, **cfg, **bus.options,
                    "host": info["host"], "port": info["port"]}
        if bus.emulated:
            return {"interface": "simcan", "channel": self._broker_info("can")[name], **cfg}
        return {"interface": bus.interface, "channel": bus.channel, **cfg, **bus.options}

    def open_can(self, name: str, **kw: Any) -> can.BusABC:
        """A python-can bus on ``name`` (extra keywords such as ``receive_own_messages`` pass through)."""
        return open_can_bus(name, {**self.can_config(name), **kw})

    def faults(self, name: str) -> BusControl:
        """Arm and clear faults on emulated CAN bus ``name`` at run time."""
        from hil.buses.control import BusControl

        bus = self._spec(name, CanBus)
        if not bus.emulated:
            raise UsageError(f"faults can only be injected on emulated buses; {name!r} is {bus.interface}:{bus.channel}")
        if name not in self._controls:
            self._controls[name] = BusControl(name, self._broker_info("can")[name])
        return self._controls[name]

    def stats(self, name: str) -> dict[str, Any]:
        """Bus statistics of emulated CAN bus ``name``: frames, error frames, faulted, load, overruns."""
        return self.faults(name).stats()

    # ---- serial ------------------------------------------------------------------------------

    def serial_port(self, name: str, side: Side = "host") -> str:
        """The tty path (or pyserial URL) of serial bus ``name`` at the ``host`` or ``device`` end.
        A real bus is one port, whichever end asks (a component on a local HPC opens it itself)."""
        bus = self._spec(name, SerialBus)
        if side not in ("host", "device"):
            raise UsageError(f"expected side 'host' or 'device', got {side!r}")
        if bus.emulated:
            return self._broker_info("serial")[name][side]
        return bus.port

    def open_serial(self, name: str, side: Side = "host", **kw: Any) -> serial.Serial:
        """A pyserial port on ``name`` at the configured baud rate (keywords pass to pyserial)."""
        return open_serial_port(self.serial_port(name, side), self._spec(name, SerialBus).baudrate, **kw)

    # ---- for child processes -------------------------------------------------------------------

    def env(self, names: Iterable[str], side: Side = "device") -> dict[str, str]:
        """``{"HIL_BUSES": json}`` describing ``names`` for :func:`bus_from_env` in a child process."""
        out: dict[str, Any] = {}
        for name in names:
            spec = self._spec(name, (CanBus, SerialBus))
            if isinstance(spec, CanBus):
                out[name] = self.can_config(name, side)
            else:
                out[name] = {"port": self.serial_port(name, side), "baudrate": spec.baudrate}
        return {ENV_VAR: json.dumps(out)}

    # ---- helpers -----------------------------------------------------------------------------

    def _spec(self, name: str, kind):
        bus = self.rig.buses.get(name)
        if bus is None:
            raise UsageError(f"unknown bus {name!r}; the rig has: {', '.join(sorted(self.rig.buses))}")
        if not isinstance(bus, kind):
            want = "CAN" if kind is CanBus else "serial"
            raise UsageError(f"expected a {want} bus, but {name!r} is a {bus.kind} bus")
        return bus

    def _adapter_info(self, name: str) -> dict[str, Any]:
        adapter = self._adapters.get(name)
        if adapter is None:
            raise BusError("the rig's buses are not up: use RigBuses as a context manager (with ...)")
        if not adapter.alive:
            raise BusError(f"{adapter.what} {adapter.ended()}")
        return adapter.info

    def _broker_info(self, section: str) -> dict[str, Any]:
        if self._broker is None:
            raise BusError("the rig's buses are not up: use RigBuses as a context manager (with ...)")
        if not self._broker.alive:
            raise BusError(f"the simbus broker has died (pid {self._broker.info.get('pid')})")
        return self._broker.info[section]


def open_serial_port(port: str, baudrate: int, **kw: Any) -> serial.Serial:
    import serial

    try:
        return serial.serial_for_url(port, baudrate=baudrate, **kw)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise BusError(f"cannot open serial port {port} at {baudrate} baud: {exc}") from None


def without_mf4() -> None:
    """Keep python-can from importing asammdf at ``import can`` (it costs ~0.6 s, seconds on a
    loaded host) in processes that never read or write MF4: emulated MCUs, the injector. python-can
    treats the failed import as "MF4 not available". Call before anything imports ``can``."""
    import sys

    sys.modules.setdefault("asammdf", None)  # type: ignore[arg-type]  # None: the import system's "not here"


def open_can_bus(name: str, cfg: dict[str, Any]) -> can.BusABC:
    """``can.Bus(**cfg)`` — for ``slcan``, python-can's driver with the device's ``Z1`` timestamps
    (:mod:`hil.buses.slcan`); whatever the driver raises (drivers raise anything from CanError to
    NameError when their vendor library is missing) becomes a BusError naming the bus."""
    import can

    try:
        if cfg["interface"] == "slcan":
            from hil.buses.slcan import TimestampedSlcan

            return TimestampedSlcan(**{k: v for k, v in cfg.items() if k != "interface"})
        return can.Bus(**cfg)
    except Exception as exc:
        raise BusError(f"cannot open CAN bus {name!r} ({cfg['interface']}:{cfg['channel']}): "
                       f"{type(exc).__name__}: {exc}") from None


def bus_from_env(name: str, env: dict[str, str] | None = None, **kw: Any) -> can.BusABC | serial.Serial:
    """Inside a child process: open bus ``name`` from ``HIL_BUSES`` (a can.BusABC or serial.Serial)."""
    raw = (os.environ if env is None else env).get(ENV_VAR)
    if raw is None:
        raise BusError(f"{ENV_VAR} is not set: this process was not started with RigBuses.env()")
    buses = json.loads(raw)
    if name not in buses:
        raise BusError(f"bus {name!r} is not in {ENV_VAR}; it has: {', '.join(sorted(buses)) or 'none'}")
    cfg = buses[name]
    if "interface" not in cfg:
        return open_serial_port(cfg["port"], cfg["baudrate"], **kw)
    return open_can_bus(name, {**cfg, **kw})
