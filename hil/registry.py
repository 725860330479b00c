"""Registries: every variation point of hil is one table, name → entry, built in and extended by
plugins through entry points (docs/plugins.md).

An entry brings an implementation (the class that does the work) and, where a rig or suite file
writes settings for it, a spec model (a :class:`hil.spec.common.Spec` subclass whose tag field —
``kind``, ``method``, ``format`` — is the entry's name). Built-in entries are ``module:attr``
strings imported on first use, as python-can's interface table is, so loading a spec never imports
a driver. A plugin adds an entry with an entry point in the registry's group; the entry point names
the implementation, which carries its spec model as its ``model`` attribute.

A plugin never silently replaces anything: a name claimed twice (by a built-in and a plugin, or by
two distributions) is an error naming both, raised where a file or a run uses that name. A broken
plugin (its import fails, its model or implementation has the wrong type) is an error naming its
entry point and distribution, raised only where it is used — rigs that do not name it never notice.
"""

from __future__ import annotations

import importlib
import typing
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from hil.errors import AnalysisError, DeployError, FlashError, HilError, StimulusError, UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

BUILTIN = "hil"


@dataclass(frozen=True)
class Entry:
    """One registry entry: its implementation and spec model (``module:attr``; a plugin's model is
    its implementation's ``model``), the spec tag value it serves when that differs from its name
    (a target ``kind: hpc`` has two drivers), the file suffixes a built-in stimulus reader reads
    (a plugin's are its implementation's ``suffixes``) and the distribution that provides it."""

    name: str
    implementation: str
    model: str | None = None
    tag: str | None = None
    suffixes: tuple[str, ...] = ()
    dist: str = BUILTIN

    @property
    def builtin(self) -> bool:
        return self.dist == BUILTIN

    def describe(self) -> str:
        """``hil's built-in 'uds'`` or ``entry point relay = pkg.mod:Relay of hil-example-plugin 0.1``."""
        if self.builtin:
            return f"hil's built-in {self.name!r}"
        return f"entry point {self.name} = {self.implementation} of {self.dist}"


class Registry:
    """One entry-point group's table. ``tag`` is the spec field that names an entry; a ``keyed``
    registry tells entries apart by which key a mapping has (ready conditions: ``console:``, …).
    ``spec_base`` and ``impl_base`` (``module:attr``) are what a plugin's model and implementation
    derive from; ``error`` is the exception of the registry's domain."""

    def __init__(self, group: str, what: str, builtins: list[Entry], *, impl_base: str, tag: str = "kind",
                 keyed: bool = False, spec_base: str | None = None, error: type[HilError] = UsageError):
        self.group, self.what, self.tag, self.keyed = group, what, tag, keyed
        self.builtins = builtins
        self.spec_base, self.impl_base, self.error = spec_base, impl_base, error
        self._table: dict[str, list[Entry]] | None = None
        self._loaded: dict[str, Any] = {}
        _ALL.append(self)

    def table(self) -> dict[str, list[Entry]]:
        """Name → the entries that claim it (one, unless a plugin clashes), built-ins first. A
        built-in's tag is claimed too: no plugin target may call itself ``hpc``."""
        if self._table is None:
            table: dict[str, list[Entry]] = {e.name: [e] for e in self.builtins}
            tags = {e.tag: e for e in self.builtins if e.tag}
            for ep in sorted(entry_points(group=self.group), key=lambda ep: ep.name):
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "an unknown distribution"
                entry = Entry(ep.name, ep.value, dist=dist)
                table.setdefault(ep.name, [tags[ep.name]] if ep.name in tags else []).append(entry)
            self._table = table
        return self._table

    def names(self) -> list[str]:
        """Every entry name: built-ins in their order, then plugins by name."""
        return list(self.table())

    def tags(self) -> list[str]:
        """The values the spec's tag field may take (one per built-in tag, one per plugin)."""
        return list(dict.fromkeys(claims[0].tag or name for name, claims in self.table().items()))

    def plugins(self) -> list[Entry]:
        return [e for claims in self.table().values() for e in claims if not e.builtin]

    def entry(self, name: str) -> Entry:
        """The one entry called ``name``, or the one serving tag ``name``; an unknown or clashing
        name is an :attr:`error` naming what is known, or both claimants."""
        claims = self.table().get(name) or next(
            (c for c in self.table().values() if c[0].tag == name), None)
        if not claims:
            raise self.error(f"no {self.what} {name!r}; known: {', '.join(self.names())}")
        if len(claims) > 1:
            raise self.error(f"{self.what} {name!r} is claimed twice: by {claims[0].describe()} and by "
                             f"{claims[1].describe()}; a plugin may not replace another — uninstall one")
        return claims[0]

    def implementation(self, name: str) -> Any:
        """The implementation of entry ``name``, checked against :attr:`impl_base`."""
        entry = self.entry(name)
        impl = self._load(entry, entry.implementation)
        base = _import(self.impl_base)
        if not (isinstance(impl, type) and issubclass(impl, base)):
            raise self.error(f"{self.what} {name!r} ({entry.describe()}) is not usable: expected a subclass of "
                             f"{base.__module__}.{base.__qualname__}, got {_kind(impl)}")
        return impl

    def model(self, name: str) -> Any:
        """The spec model of entry ``name`` (None where the registry has none): a built-in's is
        imported on its own, a plugin's is its implementation's ``model``, checked."""
        entry = self.entry(name)
        if self.spec_base is None:
            return None
        if entry.builtin:
            return self._load(entry, entry.model) if entry.model else None
        model = getattr(self.implementation(name), "model", None)
        problem = self._model_problem(name, model)
        if problem:
            raise self.error(f"{self.what} {name!r} ({entry.describe()}) is not usable: {problem}")
        return model

    def _load(self, entry: Entry, where: str) -> Any:
        """``where`` imported once; a plugin's import failure is named, never an internal error."""
        if where not in self._loaded:
            try:
                self._loaded[where] = _import(where)
            except Exception as exc:  # whatever a plugin's import raises
                if entry.builtin:
                    raise
                raise self.error(f"{self.what} {entry.name!r} ({entry.describe()}) cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from None
        return self._loaded[where]

    def _model_problem(self, name: str, model: Any) -> str | None:
        base: type[BaseModel] = _import(self.spec_base or "")  # a spec base is a pydantic model
        if not (isinstance(model, type) and issubclass(model, base)):
            return (f"expected its 'model' attribute to be a subclass of {base.__module__}.{base.__qualname__}, "
                    f"got {_kind(model)}")
        field = name if self.keyed else self.tag
        if field not in model.model_fields:
            return f"its model {model.__name__} has no field {field!r}"
        if not self.keyed and typing.get_args(model.model_fields[field].annotation) != (name,):
            got = model.model_fields[field].annotation
            return f"expected its model's {field!r} to be Literal[{name!r}], got {got!r}"
        return None

    def suffixes(self, name: str) -> tuple[str, ...]:
        """The file suffixes entry ``name`` reads, lower case with their dot (stimulus readers)."""
        entry = self.entry(name)
        if entry.builtin:
            return entry.suffixes
        return tuple(s.lower() for s in getattr(self.implementation(name), "suffixes", ()))

    def problems(self) -> list[str]:
        """Why plugin entries cannot be used (clashes, failed imports, wrong types), one line each."""
        out: list[str] = []
        for entry in self.plugins():
            try:
                self.implementation(entry.name)
                self.model(entry.name)
            except HilError as exc:
                out.append(f"{self.group}: {exc}")
        return list(dict.fromkeys(out))

    def forget(self) -> None:
        """Read the entry points again on next use (a test that installs a plugin)."""
        self._table = None
        self._loaded = {}


_ALL: list[Registry] = []


def registries() -> list[Registry]:
    """Every registry, in the order of this module."""
    return list(_ALL)


def _import(where: str) -> Any:
    module, _, attr = where.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _kind(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    return "nothing" if obj is None else f"{type(obj).__name__} {obj!r:.60}"


# -- the variation points --------------------------------------------------------------------------

TARGETS = Registry("hil.target", "target driver", [
    Entry("hpc-local", "hil.targets.local:LocalHpcTarget", "hil.spec.rig:HpcTarget", tag="hpc"),
    Entry("hpc-ssh", "hil.targets.ssh:SshHpcTarget", "hil.spec.rig:HpcTarget", tag="hpc"),
    Entry("mcu-emulated", "hil.targets.mcu:EmulatedMcuTarget", "hil.spec.rig:McuTarget", tag="mcu"),
    Entry("mcu-real", "hil.targets.mcu:RealMcuTarget", "hil.spec.rig:McuTarget", tag="mcu"),
], impl_base="hil.targets.base:Target", spec_base="hil.spec.rig:TargetSpec", error=DeployError)

FLASH = Registry("hil.flash", "flash method", [
    Entry("stm32-uart", "hil.flash.stm32:Stm32UartMethod", "hil.spec.rig:Stm32UartFlash"),
    Entry("uds", "hil.flash.uds:UdsMethod", "hil.spec.rig:UdsFlash"),
    Entry("command", "hil.flash.command:CommandMethod", "hil.spec.rig:CommandFlash"),
], tag="method", impl_base="hil.flash:FlashMethod", spec_base="hil.spec.rig:FlashSpec", error=FlashError)

POWER = Registry("hil.power", "power switch", [
    Entry("command", "hil.targets.power:CommandSwitch", "hil.spec.rig:CommandPower"),
    Entry("emulated", "hil.targets.power:EmulatedSwitch", "hil.spec.rig:EmulatedPower"),
], impl_base="hil.targets.power:Switch", spec_base="hil.spec.rig:PowerSpec", error=DeployError)

READY = Registry("hil.ready", "ready condition", [
    Entry("console", "hil.targets.ready:ConsoleCheck", "hil.spec.stack:ConsoleReady"),
    Entry("frame", "hil.targets.ready:FrameCheck", "hil.spec.stack:FrameReady"),
    Entry("socket", "hil.targets.ready:SocketCheck", "hil.spec.stack:SocketReady"),
], keyed=True, impl_base="hil.targets.ready:Check", spec_base="hil.spec.stack:ReadySpec", error=DeployError)

STIMULUS = Registry("hil.stimulus", "stimulus format", [
    Entry(name, f"hil.stimulus.readers:{cls}", suffixes=suffixes) for name, cls, suffixes in (
        ("asc", "AscReader", (".asc",)), ("blf", "BlfReader", (".blf",)), ("trc", "TrcReader", (".trc",)),
        ("log", "CandumpReader", (".log",)), ("csv", "CsvReader", (".csv",)), ("mf4", "Mf4Reader", (".mf4",)),
        ("mcap", "McapReader", (".mcap",)), ("serial", "SerialReader", (".serial", ".scap")),
        ("pcap", "PcapReader", (".pcap",)), ("pcapng", "PcapngReader", (".pcapng",)),
        ("python-can", "PythonCanReader", ()))
], tag="format", impl_base="hil.stimulus.readers:StimulusReader", error=StimulusError)

PROBES = Registry("hil.probe", "probe pairing", [
    Entry(name, f"hil.analysis.probes:{cls}") for name, cls in (
        ("counter", "CounterPairer"), ("edge", "EdgePairer"), ("next", "NextPairer"))
], tag="pair", impl_base="hil.analysis.probes:Pairer", error=AnalysisError)

MEASUREMENTS = Registry("hil.measurement", "measurement source", [
    Entry(name, f"hil.analysis.bench:{name.capitalize()}Source")
    for name in ("probe", "chain", "signal", "frames", "cycle", "replay", "lost")
], impl_base="hil.analysis.bench:Source", spec_base="hil.spec.suite:SourceSpec", error=AnalysisError)

REPORTS = Registry("hil.report", "report format", [
    Entry(name, f"hil.report:{cls}", f"hil.spec.suite:{model}") for name, cls, model in (
        ("results", "ResultsWriter", "ResultsReport"), ("junit", "JunitWriter", "JunitReport"),
        ("html", "HtmlWriter", "HtmlReport"))
], tag="format", impl_base="hil.report:ReportWriter", spec_base="hil.spec.suite:ReportSpec")
