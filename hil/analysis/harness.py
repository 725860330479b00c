"""The harness's own error on one bench, from its recording: per bus, judged against the bench's
harness budget, and bounded for every probe and chain.

The emulated buses and the injector measure how far they strayed from their model (see
:mod:`hil.harness`) and the recording carries it: ``harness`` events (per bus, ``{kind: histogram}``,
cumulative: the last one wins), the ``replay`` event (lateness of the injected frames) and
``host-load`` events (how busy the host was as the injection started and ended). Buses whose times
are an adapter's carry their :class:`~hil.clock.AdapterClock`'s method and error bound
(``harness`` events' ``clocks``); the bound is part of every latency that touches such a bus. A recording
without harness figures — real buses, a log from another tool, a recording older than the
measurement — says so: its harness error is *not measured*, never zero.

What can enter a probe's latency (stimulus on bus A, response on bus B): the stack got its stimulus
late (``delivery`` on A) and its answer was stamped late (``send`` on B). The bound given per probe
adds those errors' p99 (and their maxima); a chain adds its probes' bounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.harness import KINDS, ErrorHistogram, merge_json
from hil.spec.suite import Bench, HarnessBudget

NOT_MEASURED = ("not measured: the recording holds no harness figures (real buses, a log from another "
                "tool, or a recording made before hil measured its harness)")
MESSAGE_BREACHES = 3  # breaches named in the message (all are in results.json: harness.breaches)
BUSY_PRESSURE = 20.0  # % of time some task waited for a CPU (PSI some avg10): the host was overloaded


@dataclass
class Harness:
    """The harness's error on one bench: histograms per bus and kind, the replay's figures, the
    host's load, and the budget broken (``breaches``, empty when within it)."""

    budget: HarnessBudget
    buses: dict[str, dict[str, ErrorHistogram]] = field(default_factory=dict)
    unmeasured: list[str] = field(default_factory=list)  # recorded buses without harness figures
    clocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # adapter clock per bus: method, bound
    replay: dict[str, Any] | None = None  # lateness p50/p99/max, over budget, early, unseen, sent
    host: dict[str, dict[str, Any]] = field(default_factory=dict)  # "inject-start"/"inject-end" → load
    breaches: list[str] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        return bool(self.buses) or self.replay is not None or bool(self.clocks)

    def bound(self, from_bus: str, to_bus: str) -> dict[str, Any]:
        """The harness error that can enter a latency from ``from_bus`` to ``to_bus``: plus the
        error bound of each end's adapter clock, where its times are an adapter's — and when the
        response's bus is an emulated adapter's, its ``delivery`` too (the adapter stamps a frame
        when its node is handed it)."""
        clocks = [{"p99_ns": c["error_bound_ns"], "max_ns": c["error_bound_ns"], "parts": [f"adapter clock of {bus}"]}
                  for bus in dict.fromkeys((from_bus, to_bus)) if (c := self.clocks.get(bus))]
        stamped = [_part(self.buses, "delivery", to_bus)] if to_bus in self.clocks and to_bus in self.buses else []
        return combine([_part(self.buses, "delivery", from_bus), _part(self.buses, "send", to_bus), *stamped, *clocks])

    def message(self) -> str:
        """The bench's error message: what broke the budget, and the host's load as corroboration."""
        busy = any(_busy(load) for load in self.host.values())
        head = "host overloaded, harness over budget" if busy else "harness over budget"
        load = "; ".join(f"{at.replace('-', ' ')}: {load_text(v)}" for at, v in self.host.items())
        shown = self.breaches[:MESSAGE_BREACHES]
        if len(self.breaches) > len(shown):
            shown.append(f"{len(self.breaches) - len(shown)} more")
        return f"{head}: {'; '.join(shown)}" + (f" (host load — {load})" if load else "")

    def to_json(self) -> dict[str, Any]:
        budget = {"p50_ns": self.budget.p50, "p99_ns": self.budget.p99, "max_ns": self.budget.max}
        if not self.measured:
            return {"measured": False, "note": NOT_MEASURED, "budget": budget, "host": self.host,
                    "breaches": self.breaches}
        return {"measured": True, "budget": budget,
                "buses": {bus: {kind: {**h.summary(), "over": h.over(self.budget.p99)} for kind, h in kinds.items()}
                          for bus, kinds in self.buses.items()},
                "unmeasured": self.unmeasured, "clocks": self.clocks, "replay": self.replay, "host": self.host,
                "breaches": self.breaches}


def judge_harness(events: Iterable[tuple[str, Any]], budget: HarnessBudget, recorded: Iterable[str],
                  eaten: int = 0) -> Harness:
    """The harness of one bench from the recording's ``events`` (kind, data) in time order;
    ``recorded`` names the recorded buses, ``eaten`` counts the frames the bench's faults took off
    the wire (never seen on the bus by design). Breaches: any bus's error (any kind) over the
    budget (p50 when it has one, p99, max), a frame handed out before its end of frame, and the
    replay's broken promises — frames early, frames sent but never seen on the bus, lateness over
    the budget."""
    last: dict[str, Any] = {}
    out = Harness(budget)
    for kind, data in events:
        last[kind] = data
        if kind == "host-load":
            out.host[data.get("at", "?")] = {k: v for k, v in data.items() if k != "at"}
    figures = (last.get("harness") or {}).get("buses") or {}
    out.buses = {bus: merge_json([kinds]) for bus, kinds in sorted(figures.items())}
    out.clocks = dict(sorted(((last.get("harness") or {}).get("clocks") or {}).items()))
    out.unmeasured = sorted(set(recorded) - set(out.buses) - set(out.clocks))
    for bus, clock in out.clocks.items():
        if budget.p99 is not None and clock["error_bound_ns"] > budget.p99:
            out.breaches.append(f"adapter clock error bound {duration_text(clock['error_bound_ns'])} on bus {bus}, "
                                f"budget {duration_text(budget.p99)}")
    for bus, kinds in out.buses.items():
        for kind in KINDS:
            if kind in kinds and kinds[kind].count:
                h = kinds[kind]
                out.breaches += _over(f"{kind} error", (h.quantile(0.5), h.quantile(0.99), h.max_ns), budget,
                                      f" on bus {bus}")
        if "delivery" in kinds and kinds["delivery"].early:
            out.breaches.append(f"{kinds['delivery'].early} frame(s) handed out before their end of frame on bus {bus}")
    if "replay" in last:
        out.replay = replay_figures(last["replay"], eaten, budget)
        out.breaches += replay_breaches(out.replay, budget)
    return out


def replay_figures(replay: Mapping[str, Any], eaten: int, budget: HarnessBudget) -> dict[str, Any]:
    """What the harness promised about the injected frames: lateness p50/p99/max (ns) and frames
    over the p99 budget, frames early, and frames sent but never seen on the bus that no fault of
    the bench took off the wire."""
    stats = replay.get("lateness_ns") or {}
    sent = replay.get("frames_sent", 0)
    measured = sent - replay.get("frames_unmeasured", 0)
    return {"p50_ns": stats.get("p50"), "p99_ns": stats.get("p99"), "max_ns": stats.get("max"),
            "over": sum(1 for late in replay.get("lateness") or () if late > budget.p99),
            "early": replay.get("frames_early", 0),
            "unseen": max(0, measured - replay.get("frames_echoed", measured) - eaten),
            "unseen_ids": {bus: u["ids"] for bus, u in (replay.get("unseen") or {}).items()},
            "unmeasured": sent - measured, "sent": sent}


def replay_breaches(figures: Mapping[str, Any], budget: HarnessBudget) -> list[str]:
    out = []
    if figures["early"]:
        out.append(f"{figures['early']} replay frame(s) went out before their time")
    if figures["unseen"]:
        ids = "; ".join(f"{bus}: {', '.join(hex(i) for i in got)}"
                        for bus, got in figures.get("unseen_ids", {}).items())
        out.append(f"{figures['unseen']} of {figures['sent']} replay frame(s) sent were never seen on the bus, "
                   "so when they went out is unknown" + (f" (ids {ids})" if ids else ""))
    return out + _over("replay lateness", (figures["p50_ns"], figures["p99_ns"], figures["max_ns"]), budget)


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Bounds added up (parts of one path, or the probes of a chain); not measured when any part
    is not."""
    known = all(p["p99_ns"] is not None for p in parts)
    return {"p99_ns": sum(p["p99_ns"] for p in parts) if known else None,
            "max_ns": sum(p["max_ns"] for p in parts) if known else None,
            "parts": [name for p in parts for name in p["parts"]]}


def probe_bounds(bench: Bench, harness: Harness) -> tuple[dict[str, dict], dict[str, dict]]:
    """The harness bound of each probe and each chain of ``bench``."""
    probes = {p.name: harness.bound(p.from_.bus, p.to.bus) for p in bench.probes}
    return probes, {c.name: combine([probes[name] for name in c.probes]) for c in bench.chains}


def duration_text(ns: float) -> str:
    """A duration for people: ``480 µs``, ``3.2 ms``, ``1.5 s``, ``800 ns``."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def budget_text(budget: Mapping[str, Any]) -> str:
    """A budget from results.json for people: ``p99 1 ms, max 20 ms`` (with p50 when it has one)."""
    return ", ".join(f"{k[:-3]} {duration_text(budget[k])}" for k in ("p50_ns", "p99_ns", "max_ns")
                     if budget.get(k) is not None)


def bound_text(bound: dict | None, fmt) -> str:
    """A probe's harness bound for a report cell: its p99 in ``fmt``, ``not measured``, or ``—``
    (results older than the measurement)."""
    if bound is None:
        return "—"
    return "not measured" if bound["p99_ns"] is None else fmt(bound["p99_ns"])


def _part(buses: Mapping[str, Mapping[str, ErrorHistogram]], kind: str, bus: str) -> dict[str, Any]:
    h = buses.get(bus, {}).get(kind)
    if h is None:
        return {"p99_ns": None, "max_ns": None, "parts": [f"{kind} on {bus}"]}
    return {"p99_ns": h.quantile(0.99) or 0, "max_ns": h.max_ns, "parts": [f"{kind} on {bus}"]}


def _over(what: str, figures: tuple[float | None, ...], budget: HarnessBudget, where: str = "") -> list[str]:
    """``figures`` (p50, p99, max) against the budget's, each broken one as a sentence."""
    return [f"{what} {stat} {duration_text(value)}{where}, budget {duration_text(limit)}"
            for stat, value, limit in zip(("p50", "p99", "max"), figures, (budget.p50, budget.p99, budget.max))
            if value is not None and limit is not None and value > limit]


def _busy(load: Mapping[str, Any]) -> bool:
    pressure, avg, cpus = load.get("cpu_some_avg10"), load.get("loadavg") or [0.0], load.get("cpus") or 1
    return (pressure is not None and pressure >= BUSY_PRESSURE) or avg[0] >= cpus


def load_text(load: Mapping[str, Any]) -> str:
    """A ``host-load`` figure for people: ``CPU pressure 87 %, load 4.10 on 2 CPUs``."""
    pressure = load.get("cpu_some_avg10")
    avg = (load.get("loadavg") or [None])[0]
    parts = [] if pressure is None else [f"CPU pressure {pressure:.0f} %"]
    if avg is not None:
        parts.append(f"load {avg:.2f} on {load.get('cpus')} CPUs")
    return ", ".join(parts) or "unknown"
