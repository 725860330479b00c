"""The stack: the software under test, as components mapped to rig targets."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from hil import registry
from hil.spec.common import (DBC_FILE, FIRMWARE_IMAGE, SHIPPED_FILE, Arg, EnvName, JsonObject, Name, PositiveDuration,
                             Spec, SpecPath, Version)
from hil.spec.match import FrameMatch
from hil.spec.registered import Registered
from hil.spec.rig import Rig
from hil.text import LINE_CONTROL

Problem = tuple[tuple, str]
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


class ReadySpec(Spec):
    """Base of every ready condition's model (``hil.ready``): a condition is told apart by its key
    (``console:``, ``frame:``, …), which is its entry's name."""

    timeout: PositiveDuration = 30_000_000_000


class ConsoleReady(ReadySpec):
    """Ready when a console (stdout/stderr or serial console) line matches ``console`` (a regex)."""

    console: str = Field(max_length=1000, description="a Python regular expression")

    @field_validator("console")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"expected a regular expression, got {value!r}: {exc}") from None
        return value


class FrameReady(ReadySpec):
    """Ready when a matching frame appears on a bus."""

    frame: FrameMatch
    dbc: Annotated[SpecPath, DBC_FILE] | None = Field(None, description="DBC file for 'message' / 'signal' conditions")


class SocketReady(ReadySpec):
    """Ready when ``tcp://HOST:PORT`` or ``unix:PATH`` accepts a connection."""

    socket: str

    @field_validator("socket")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.startswith("tcp://"):
            port = re.fullmatch(r"tcp://[^:/\s]+:([0-9]{1,5})", value)
            if port and 1 <= int(port.group(1)) <= 65535:
                return value
            raise ValueError(f"expected 'tcp://HOST:PORT' with PORT in 1..65535, got {value!r}")
        if value.startswith("unix:") and len(value) > 5 and not LINE_CONTROL.search(value):
            if len(value[5:].encode()) > UNIX_PATH_MAX:
                raise ValueError(f"expected a socket path of at most {UNIX_PATH_MAX} bytes (the kernel's "
                                 f"limit), got {len(value[5:].encode())}")
            return value
        raise ValueError(f"expected 'tcp://HOST:PORT' or 'unix:PATH', got {value!r}")


Ready = Annotated[ConsoleReady | FrameReady | SocketReady | ReadySpec, Registered(registry.READY)]


class ProcessComponent(Spec):
    """A Linux process started on an HPC target."""

    kind: Literal["process"]
    target: Name
    files: list[Annotated[SpecPath, SHIPPED_FILE]] = Field(default_factory=list, description="files shipped in the bundle")
    argv: list[Arg] = Field(min_length=1)
    env: dict[EnvName, Arg] = Field(default_factory=dict)
    ready: Ready | None = None
    config: JsonObject = Field(default_factory=dict, description="passed as HIL_CONFIG (JSON)")


class FirmwareComponent(Spec):
    """A firmware image flashed onto an MCU target."""

    kind: Literal["firmware"]
    target: Name
    image: Annotated[SpecPath, FIRMWARE_IMAGE] = Field(description="a built .hilfw image, a firmware_stubs/NAME folder to build, or a "
                                        "real board's raw .bin")
    version: Version
    ready: Ready | None = None
    config: JsonObject = Field(default_factory=dict, description="firmware parameters")


Component = Annotated[ProcessComponent | FirmwareComponent, Field(discriminator="kind")]


class Stack(Spec):
    """A manifest of components with a name and version."""

    name: Name
    version: Version
    components: dict[Name, Component] = Field(min_length=1)

    def problems_on(self, rig: Rig) -> list[Problem]:
        """What does not fit ``rig``: unknown targets, components on the wrong kind of target."""
        out: list[Problem] = []
        for name, comp in self.components.items():
            loc = ("components", name)
            target = rig.targets.get(comp.target)
            if target is None:
                known = ", ".join(sorted(rig.targets)) or "none"
                out.append(((*loc, "target"), f"unknown target {comp.target!r}; rig {rig.name!r} has: {known}"))
                continue
            want = "hpc" if comp.kind == "process" else "mcu"
            if target.runs != comp.kind:
                out.append(((*loc, "target"),
                            f"a {comp.kind} component needs an {want} target, but {comp.target!r} is {target.kind}"))
            if isinstance(comp.ready, FrameReady) and comp.ready.frame.bus not in rig.buses:
                out.append(((*loc, "ready", "frame", "bus"), f"unknown bus {comp.ready.frame.bus!r}"))
        firmware: dict[str, str] = {}
        for name, comp in self.components.items():
            if comp.kind == "firmware" and firmware.setdefault(comp.target, name) != name:
                out.append((("components", name, "target"), f"an MCU runs one firmware image; target {comp.target!r} "
                                                           f"already runs component {firmware[comp.target]!r}"))
        return out

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        for name, comp in self.components.items():
            landed: dict[str, int] = {}  # a shipped file or folder lands in the bundle under its own name
            for j, path in enumerate(getattr(comp, "files", [])):
                if landed.setdefault(path.name, j) != j:
                    out.append((("components", name, "files", j), f"{path.name!r} would land where files[{landed[path.name]}] "
                                                                   "does in the bundle: rename one"))
            if isinstance(comp.ready, FrameReady):
                frame = comp.ready.frame
                out += [(("components", name, "ready", "frame", *loc), msg) for loc, msg in frame.problems()]
                if (frame.message or frame.signal) and comp.ready.dbc is None:
                    out.append((("components", name, "ready"), "a 'message' or 'signal' condition needs 'dbc'"))
        return out
