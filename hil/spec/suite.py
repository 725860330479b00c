"""The suite: benches (deploy → inject → record → measure → judge) plus defaults."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from hil import registry
from hil.spec.common import (DBC_FILE, SPEC_FILE, STIMULUS_FILE, CanId, Duration, JsonObject, Line, Name,
                             PositiveDuration, Spec, SpecPath, Text, format_duration)
from hil.spec.faults import Fault, fault_problems
from hil.spec.match import FieldMatch, FrameMatch
from hil.spec.registered import Named, Registered
from hil.spec.rig import CanBus, Rig

Problem = tuple[tuple, str]
TIME_UNITS = ("ns", "us", "µs", "ms", "s")
COUNT_UNITS = ("", "frames", "count")
COUNT_STATS = ("count", "missed", "deadline_misses", "duplicates")
DbcPath = Annotated[SpecPath, DBC_FILE]
StackPath = Annotated[SpecPath, SPEC_FILE]
Stat = Literal["count", "missed", "min", "p50", "p90", "p99", "p99.9", "max", "mean", "std",
               "deadline_misses", "duplicates", "last", "first"]


class Override(Spec):
    """Changes a stimulus message on its way out (via DBC): set / scale / offset / freeze a signal,
    or drop the message for the window (a sensor dropout)."""

    message: Line
    signal: Line | None = None
    action: Literal["set", "scale", "offset", "freeze", "drop"]
    value: StrictFloat | None = None
    start: Duration = 0
    end: Duration | None = None


PACKET_FORMATS = ("pcap", "pcapng")  # stimulus formats of UDP datagrams (hil.stimulus.pcap)
UdpPort = Annotated[StrictInt, Field(ge=1, le=65535)]


def stimulus_format(path: Path, fmt: str = "auto") -> str | None:
    """The format of stimulus file ``path``: ``fmt``, or for "auto" the ``hil.stimulus`` reader
    that claims its suffix — the suffix before ``.gz`` for a compressed file — else ``python-can``
    when python-can's reader table (its own readers and its plugins) has one for it (None: none)."""
    if fmt != "auto":
        return fmt
    name = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    suffix = name.suffix.lower()
    owners = [n for n in registry.STIMULUS.names() if suffix in registry.STIMULUS.suffixes(n)]
    if len(owners) > 1:
        raise registry.STIMULUS.error(f"files ending in {suffix!r} are claimed twice: by "
                                      f"{registry.STIMULUS.entry(owners[0]).describe()} and by "
                                      f"{registry.STIMULUS.entry(owners[1]).describe()}; a plugin may not "
                                      "replace another — uninstall one")
    if owners:
        return owners[0]
    return "python-can" if suffix and suffix in python_can_suffixes() else None


def suffix_formats() -> list[str]:
    """The stimulus formats a file's suffix names (``python-can`` needs a suffix python-can reads)."""
    return [n for n in registry.STIMULUS.names() if registry.STIMULUS.suffixes(n)]


def python_can_suffixes() -> set[str]:
    """The suffixes python-can's ``LogReader`` reads: its own readers and ``can.io.message_reader``
    entry points."""
    from importlib.metadata import entry_points

    from can.io.player import MESSAGE_READERS

    return set(MESSAGE_READERS) | {ep.name for ep in entry_points(group="can.io.message_reader")}


def format_unavailable(fmt: str) -> str | None:
    """Why files of format ``fmt`` cannot be read or written here (None: they can): MF4 needs the
    optional asammdf, which python-can otherwise reports as a corrupt file."""
    if fmt == "mf4" and importlib.util.find_spec("asammdf") is None:
        return "MF4 needs asammdf, which is not installed: pip install 'hil[mf4]'"
    return None


class Source(Spec):
    """One recorded stream on the timeline."""

    file: Annotated[SpecPath, STIMULUS_FILE]
    format: Annotated[StrictStr, Named(registry.STIMULUS, also=("auto",))] = "auto"
    map: dict[Line, Name] = Field(default_factory=dict, description="log channel → rig bus; for a packet "
                                  "capture, destination ADDRESS:PORT → TARGET.PORT")
    include_ids: list[CanId] | None = None
    exclude_ids: list[CanId] = Field(default_factory=list)
    include_ports: list[UdpPort] | None = Field(None, description="packet capture: only datagrams to these "
                                                "destination UDP ports (the capture's, before the map)")
    exclude_ports: list[UdpPort] = Field(default_factory=list, description="packet capture: not the datagrams to "
                                         "these destination UDP ports")
    start: Duration = Field(0, description="window start, relative to the source's first event")
    end: Duration | None = None
    offset: Duration = Field(0, description="where this source starts on the merged timeline")
    lenient: bool = Field(False, description="text logs: skip lines that are not understood (counted and "
                                             "reported as left out) instead of refusing the file")

    @property
    def packets(self) -> bool:
        """Whether this source is a packet capture (its map names target ports, not buses)."""
        return stimulus_format(self.file, self.format) in PACKET_FORMATS

    def filter_problems(self) -> list[Problem]:
        """Filters for what the source does not hold: CAN ids on a capture's datagrams, ports on frames."""
        if self.packets:
            return [((key,), f"a packet capture holds UDP datagrams, not CAN frames: filter them by destination "
                             f"port with '{key.replace('_ids', '_ports')}'")
                    for key, value in (("include_ids", self.include_ids), ("exclude_ids", self.exclude_ids)) if value]
        return [((key,), f"'{key}' filters a packet capture's (pcap, pcapng) datagrams by destination port; "
                         f"this source is {stimulus_format(self.file, self.format) or 'not a capture'}")
                for key, value in (("include_ports", self.include_ports), ("exclude_ports", self.exclude_ports))
                if value]


class WaitFor(Spec):
    """Closed-loop step: at timeline time ``at``, pause until ``until`` appears (or time out)."""

    at: Duration
    until: FrameMatch
    timeout: PositiveDuration = 5_000_000_000


class Stimulus(Spec):
    sources: list[Source] = Field(min_length=1)
    dbc: list[DbcPath] = Field(default_factory=list)
    rate: StrictFloat = Field(1.0, ge=0.001, le=1000, description="speed factor: 2 plays twice as fast")
    loop: StrictInt = Field(1, ge=1, le=100_000, description="play the stimulus this many times")
    start: Literal["immediately", "first-event"] = "first-event"
    delay: Duration = 0
    skip_gaps_over: PositiveDuration | None = None
    max_gap: PositiveDuration = Field(60_000_000_000, description="longest silence allowed in play time, before the "
                                                        "first frame or between frames; longer is refused")
    waits: list[WaitFor] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)

    def problems(self) -> list[Problem]:
        """Windows that end before they start; overrides and waits that need what is missing."""
        out: list[Problem] = []
        for j, src in enumerate(self.sources):
            if src.end is not None and src.end <= src.start:
                out.append((("sources", j, "end"), "expected 'end' after 'start'"))
            out += [(("sources", j, *loc), msg) for loc, msg in src.filter_problems()]
        if self.overrides and not self.dbc:
            out.append((("overrides",), "overrides name DBC messages: the stimulus needs 'dbc' files"))
        for j, ov in enumerate(self.overrides):
            loc = ("overrides", j)
            if ov.action != "drop" and ov.signal is None:
                out.append((loc, f"'{ov.action}' needs 'signal'"))
            if ov.action in ("set", "scale", "offset") and ov.value is None:
                out.append((loc, f"'{ov.action}' needs 'value'"))
            if ov.end is not None and ov.end <= ov.start:
                out.append((loc + ("end",), "expected 'end' after 'start'"))
        for j, w in enumerate(self.waits):
            if w.until.message is not None and not self.dbc:
                out.append((("waits", j, "until", "message"), "a DBC message needs 'dbc' files in the stimulus"))
            out += [(("waits", j, "until", *loc), msg) for loc, msg in w.until.problems()]
        return out


class ProbeEnd(Spec):
    """One side of a latency probe: which frames (or, with ``port``, which datagrams of a network),
    and for counter/edge pairing which field."""

    bus: Name
    port: StrictInt | None = Field(None, ge=1, le=65535, description="the datagrams to this UDP port on network "
                                                                     "'bus' (injected or sent by the stack)")
    offset: StrictInt | None = Field(None, ge=0, le=65_507, description="datagram: a counter field at this byte")
    size: Literal[1, 2, 4, 8] = Field(2, description="datagram: the counter field's size in bytes")
    order: Literal["big", "little"] = Field("big", description="datagram: the counter field's byte order")
    rtp: Literal["sequence", "timestamp"] | None = Field(None, description="datagram: the RTP header's sequence "
                                                                            "number or timestamp as counter")
    where: list[FieldMatch] = Field(default_factory=list, max_length=16, description="datagram: only those whose "
                                    "payload meets every condition (a field compared with a value)")
    id: CanId | None = None
    message: Line | None = None
    signal: Line | None = Field(None, description="DBC signal: counter value or edge signal")
    byte: StrictInt | None = Field(None, ge=0, le=63, description="counter in this payload byte (no DBC)")
    threshold: StrictFloat | None = None
    direction: Literal["rising", "falling"] = "rising"


class Probe(Spec):
    """A latency definition: stimulus event → response, paired by counter, edge, next frame or a
    plugin's pairing (``hil.probe``)."""

    name: Name
    from_: ProbeEnd = Field(alias="from")
    to: ProbeEnd
    pair: Annotated[StrictStr, Named(registry.PROBES)]
    window: PositiveDuration = Field(1_000_000_000, description="a response later than this is a miss")
    budget: PositiveDuration | None = Field(None, description="deadline for deadline-miss counting")
    modulo: StrictInt | None = Field(None, ge=2, le=1 << 32, description="counter wrap-around (e.g. 16, 256)")


class Chain(Spec):
    """Probes hop after hop (sensor → HPC → actuator) for a per-hop breakdown."""

    name: Name
    probes: list[Name] = Field(min_length=2)
    budget: PositiveDuration | None = Field(None, description="end-to-end deadline for deadline-miss counting")


class SourceSpec(Spec):
    """Base of a plugin measurement source's model (``hil.measurement``), written as a
    measurement's ``source: {kind: NAME, ...}``; the built-in sources are keys of their own."""

    kind: str


BUILTIN_SOURCES = ("probe", "chain", "signal", "frames", "cycle", "replay", "lost")


class Measurement(Spec):
    """A named value with a unit and limits; exactly one source among probe/chain/signal/frames/
    cycle/replay/lost, or a plugin's ``source``."""

    name: Name
    probe: Name | None = None
    chain: Name | None = None
    signal: Line | None = Field(None, description="MESSAGE.SIGNAL on ``bus``")
    frames: CanId | None = Field(None, description="frames with this id on ``bus``")
    cycle: CanId | None = Field(None, description="cycle time of this id on ``bus``")
    replay: StrictBool = Field(False, description="the injector's replay error (lateness)")
    lost: StrictBool = Field(False, description="frames lost on ``bus``")
    bus: Name | None = None
    stat: Stat = "max"
    unit: Line = ""
    lt: StrictFloat | None = None
    le: StrictFloat | None = None
    gt: StrictFloat | None = None
    ge: StrictFloat | None = None
    range: tuple[StrictFloat, StrictFloat] | None = None
    marginal: StrictFloat | None = Field(None, ge=0, description="band inside the limits judged marginal")
    source: Annotated[SourceSpec, Registered(registry.MEASUREMENTS)] | None = Field(
        None, description="a plugin's measurement source: {kind: NAME, ...}")

    def sources(self) -> list[str]:
        """The sources this measurement names: built-in keys, or the kind of its ``source``."""
        return [k for k in BUILTIN_SOURCES if getattr(self, k) not in (None, False)] + (
            [self.source.kind] if self.source is not None else [])


class HarnessBudget(Spec):
    """How far the harness (emulated buses, injector) may stray from its model before a bench's
    measurements say nothing about the stack: each harness error on each bus, and the replay's
    lateness, at p99 and on any single frame. Breaking it makes the bench an ``error``."""

    # default= by keyword: type checkers read only that as a default (pydantic takes either)
    p50: PositiveDuration | None = Field(default=None, description="p50 of every harness error and of the replay "
                                                                   "lateness")
    p99: PositiveDuration = Field(default=1_000_000, description="p99 of every harness error and of the replay "
                                                                 "lateness")
    max: PositiveDuration = Field(default=20_000_000, description="any single frame's harness error or replay "
                                                                  "lateness")


class ReportSpec(Spec):
    """Base of every report format's model (``hil.report``): ``format`` names it; a bare name
    stands for ``{format: NAME}``."""

    format: str


class ResultsReport(ReportSpec):
    """results.json (always written)."""

    format: Literal["results"]


class JunitReport(ReportSpec):
    """junit.xml (always written)."""

    format: Literal["junit"]


class HtmlReport(ReportSpec):
    """report.html with plots (always written)."""

    format: Literal["html"]


Report = Annotated[ResultsReport | JunitReport | HtmlReport | ReportSpec,
                   Registered(registry.REPORTS, shorthand=True)]


class Bench(Spec):
    name: Name
    description: Text = ""
    stack: StackPath | None = None
    dbc: list[DbcPath] = Field(default_factory=list, description="DBC files for probes and signal measurements")
    stimulus: Stimulus | None = None
    duration: Duration | None = Field(None, description="record this long (default: the stimulus)")
    settle: Duration | None = None
    timeout: PositiveDuration | None = None
    record: list[Name] | None = Field(None, description="buses to record (default: all)")
    power_cycle: bool | None = Field(None, description="cycle the power switch of every target the stack uses "
                                                       "before deploying (default: defaults.power_cycle)")
    faults: dict[Name, list[Fault]] = Field(default_factory=dict, description="bus → faults")
    config: dict[Name, JsonObject] = Field(default_factory=dict, description="component → config")
    probes: list[Probe] = Field(default_factory=list)
    chains: list[Chain] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    harness: HarnessBudget = Field(default_factory=HarnessBudget,
                                   description="the fields set here override defaults.harness")


class Defaults(Spec):
    stack: StackPath | None = None
    dbc: list[DbcPath] = Field(default_factory=list, description="DBC files every bench decodes with")
    settle: Duration = 500_000_000
    timeout: PositiveDuration = 120_000_000_000
    power_cycle: bool = Field(default=False, description="every bench power-cycles its targets before deploying")
    harness: HarnessBudget = Field(default_factory=HarnessBudget)


class Suite(Spec):
    name: Name
    description: Text = ""
    requires: list[Line] = Field(default_factory=list, description="rig tags this suite needs")
    defaults: Defaults = Field(default_factory=Defaults)
    benches: list[Bench] = Field(min_length=1)
    reports: list[Report] = Field(default_factory=list, description="report formats written besides results.json, "
                                                                    "junit.xml and report.html (hil plugins)")

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        out += _duplicates(("benches",), [b.name for b in self.benches])
        for i, b in enumerate(self.benches):
            loc = ("benches", i)
            out += _duplicates(loc + ("probes",), [p.name for p in b.probes])
            out += _duplicates(loc + ("measurements",), [m.name for m in b.measurements])
            if b.stack is None and self.defaults.stack is None:
                out.append((loc, "no stack: set 'stack' here or in 'defaults'"))
            out += self._time_problems(loc, b)
            if b.record is not None:
                out += [((*loc, *at), f"bus {bus!r} is analysed but not recorded: add it to 'record' "
                                      f"({', '.join(b.record) or 'empty'})")
                        for at, bus in _bus_refs(b) if at[0] in ("probes", "measurements") and bus not in b.record]
            probes = {p.name for p in b.probes}
            chains = {c.name for c in b.chains}
            for j, c in enumerate(b.chains):
                out += [((*loc, "chains", j, "probes", k), f"unknown probe {p!r}")
                        for k, p in enumerate(c.probes) if p not in probes]
            for j, m in enumerate(b.measurements):
                out += _measurement_problems(loc + ("measurements", j), m, probes, chains)
            for j, p in enumerate(b.probes):
                out += [((*loc, "probes", j, *at), msg) for at, msg in _datagram_end_problems(p)]
                for side in ("from", "to"):
                    end = p.from_ if side == "from" else p.to
                    if end.port is None and (end.id is None) == (end.message is None):
                        out.append(((*loc, "probes", j, side), "expected exactly one of 'id' or 'message'"))
                for side, end in (("from", p.from_), ("to", p.to)):
                    if p.pair == "counter" and end.port is None and end.signal is None and end.byte is None:
                        out.append(((*loc, "probes", j, side), "counter pairing needs 'signal' or 'byte'"))
                if p.pair == "edge" and p.from_.threshold is None:
                    out.append(((*loc, "probes", j, "from"), "edge pairing needs 'signal' and 'threshold'"))
            if b.stimulus:
                out += [((*loc, "stimulus", *l), msg) for l, msg in b.stimulus.problems()]
        return out

    def _time_problems(self, loc: tuple, b: Bench) -> list[Problem]:
        """A bench whose recording and settling alone outlast its timeout can never finish."""
        timeout = b.timeout if b.timeout is not None else self.defaults.timeout
        settle = b.settle if b.settle is not None else self.defaults.settle
        if (b.duration or 0) + settle < timeout:
            return []
        where = (*loc, "timeout") if b.timeout is not None else (*loc, "duration") if b.duration else (*loc,)
        records = f"records {format_duration(b.duration)} and " if b.duration else ""
        return [(where, f"the bench {records}settles {format_duration(settle)}, but its timeout is "
                        f"{format_duration(timeout)}: it can never finish in time")]

    def harness_budget(self, bench: Bench) -> HarnessBudget:
        """``bench``'s harness budget: the fields it sets, over the suite's defaults."""
        own = bench.harness
        return self.defaults.harness.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})

    def problems_on(self, rig: Rig) -> list[Problem]:
        """Buses named by benches that ``rig`` lacks, or of the wrong kind (probes, measurements and
        faults are CAN's; faults need an emulated bus); rig tags the suite requires."""
        out: list[Problem] = []
        missing = [t for t in self.requires if t not in rig.tags]
        if missing:
            out.append((("requires",), f"rig {rig.name!r} lacks tags {missing}; it has {rig.tags}"))
        from hil.net import destinations

        ports = destinations(rig)
        for i, b in enumerate(self.benches):
            datagram_ends = {("probes", j, side, "bus") for j, p in enumerate(b.probes)
                             for side, end in (("from", p.from_), ("to", p.to)) if end.port is not None}
            for loc, bus in _bus_refs(b):
                spec = rig.buses.get(bus)
                if loc[:2] == ("stimulus", "sources") and bus in ports:
                    continue  # a datagram's destination: TARGET.PORT on a network
                if spec is None:
                    known = ", ".join(sorted(rig.buses))
                    out.append((("benches", i, *loc), f"unknown bus {bus!r}; rig {rig.name!r} has: {known}"))
                elif loc in datagram_ends and spec.kind != "ethernet":
                    out.append((("benches", i, *loc), f"'port' names datagrams of a network, but {bus!r} is a "
                                                      f"{spec.kind} bus"))
                elif loc[0] in ("probes", "measurements", "faults") and spec.kind != "can" and loc not in datagram_ends:
                    out.append((("benches", i, *loc), f"expected a CAN bus, but {bus!r} is a {spec.kind} bus"))
                elif loc[0] == "faults" and isinstance(spec, CanBus) and not spec.emulated:  # CAN: checked above
                    out.append((("benches", i, *loc), f"faults can only be injected on emulated buses; {bus!r} is "
                                                      f"{spec.interface}:{spec.channel}"))
            out += [(("benches", i, *loc), msg) for loc, msg in _packet_map_problems(b, rig)]
            for bus, faults in b.faults.items():
                fd = getattr(rig.buses.get(bus), "fd", True)
                out += [(("benches", i, "faults", bus, *at), msg) for at, msg in fault_problems(faults, fd)]
        return out


def _packet_map_problems(b: Bench, rig: Rig) -> list[Problem]:
    """A packet capture's map sends destinations to ports targets declare (``TARGET.PORT``)."""
    from hil.net import destinations

    known = destinations(rig)
    return [(("stimulus", "sources", j, "map", ch), f"unknown target port {to!r}; a datagram goes to TARGET.PORT: "
                                                     f"{', '.join(sorted(known)) or 'none (targets declare ports under networks)'}")
            for j, s in enumerate(b.stimulus.sources if b.stimulus else ()) if s.packets
            for ch, to in s.map.items() if to not in known]


def _datagram_end_problems(p: Probe) -> list[Problem]:
    """A probe end on datagrams (``port``) reads a field at an offset or the RTP header, never a
    CAN id, DBC signal or byte; and edges are DBC signals' (CAN only)."""
    out: list[Problem] = []
    for side, end in (("from", p.from_), ("to", p.to)):
        can_fields = [k for k in ("id", "message", "signal", "byte", "threshold") if getattr(end, k) is not None]
        if end.port is None:
            if end.offset is not None or end.rtp is not None or end.where:
                out.append(((side,), "'offset', 'rtp' and 'where' read a datagram: they need the network's 'port'"))
            continue
        out += [((side, "where", k, *at), msg) for k, cond in enumerate(end.where) for at, msg in cond.problems()]
        if can_fields:
            out.append(((side, can_fields[0]), f"a datagram end (port {end.port}) has no '{can_fields[0]}': it is "
                                                "matched by port, its counter read at 'offset' or from 'rtp'"))
        if end.offset is not None and end.rtp is not None:
            out.append(((side,), "expected one of 'offset' or 'rtp'"))
        if p.pair == "counter" and end.offset is None and end.rtp is None:
            out.append(((side,), "counter pairing on datagrams needs 'offset' (with 'size', 'order') or 'rtp'"))
        if p.pair == "edge":
            out.append(((side,), "edge pairing crosses DBC signal thresholds of CAN frames; pair datagrams by "
                                 "'counter' or 'next'"))
    return out


def _duplicates(loc: tuple, names: list[str]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for i, n in enumerate(names):
        if n in seen:
            out.append(((*loc, i, "name"), f"duplicate name {n!r}"))
        seen.add(n)
    return out


def _measurement_problems(loc: tuple, m: Measurement, probes: set[str], chains: set[str]) -> list[Problem]:
    out: list[Problem] = []
    src = m.sources()
    if len(src) != 1:
        keys = ", ".join(BUILTIN_SOURCES + (("source",) if registry.MEASUREMENTS.plugins() else ()))
        out.append((loc, f"expected exactly one of {keys}; got {src or 'none'}"))
    if m.probe is not None and m.probe not in probes:
        out.append((loc + ("probe",), f"unknown probe {m.probe!r}; this bench has: {', '.join(sorted(probes)) or 'none'}"))
    if m.chain is not None and m.chain not in chains:
        out.append((loc + ("chain",), f"unknown chain {m.chain!r}"))
    if m.stat == "duplicates" and src != ["probe"]:
        out.append((loc + ("stat",), "'duplicates' (stimuli repeating a counter before its answer) is a "
                                     f"probe's; got {src[0] if src else 'no source'}"))
    if any(k in src for k in ("signal", "frames", "cycle", "lost")) and m.bus is None:
        out.append((loc, f"'{src[0]}' needs 'bus'"))
    counted = m.stat in COUNT_STATS or (src and src[0] in ("frames", "lost"))
    if counted and m.unit not in COUNT_UNITS:
        out.append((loc + ("unit",), f"expected a count unit ({', '.join(repr(u) for u in COUNT_UNITS)}) "
                                     f"for a count, got {m.unit!r}"))
    elif src and src[0] in ("probe", "chain", "replay", "cycle") and not counted and m.unit not in TIME_UNITS:
        out.append((loc + ("unit",), f"expected a time unit ({', '.join(TIME_UNITS)}) for a {src[0]} "
                                     f"measurement, got {m.unit!r}"))
    if not any(v is not None for v in (m.lt, m.le, m.gt, m.ge, m.range)):
        out.append((loc, "expected at least one limit: lt, le, gt, ge or range"))
    if m.range is not None and m.range[0] > m.range[1]:
        out.append((loc + ("range",), f"expected [low, high] with low ≤ high, got {list(m.range)}"))
    return out


def _bus_refs(b: Bench):
    for j, p in enumerate(b.probes):
        yield ("probes", j, "from", "bus"), p.from_.bus
        yield ("probes", j, "to", "bus"), p.to.bus
    for j, m in enumerate(b.measurements):
        if m.bus is not None:
            yield ("measurements", j, "bus"), m.bus
    for bus in b.faults:
        yield ("faults", bus), bus
    for j, bus in enumerate(b.record or []):
        yield ("record", j), bus
    if b.stimulus:
        for j, s in enumerate(b.stimulus.sources):
            for ch, bus in s.map.items() if not s.packets else ():  # a capture maps to TARGET.PORT
                yield ("stimulus", "sources", j, "map", ch), bus
        for j, w in enumerate(b.stimulus.waits):
            yield ("stimulus", "waits", j, "until", "bus"), w.until.bus
