"""The replay report: how far each frame's real time was from its planned time.

Lateness is measured against the end of frame, the stimulus log's time (loggers stamp there). On an
emulated bus a frame's real time is when the injector's own ``simcan`` node handed its echo out:
a node receives the frame then, so this includes how late the emulation really delivered it (the
broker's end-of-frame stamp is the model's promise; with timed release it always equals the plan,
so comparing the two would measure nothing). On a real bus it is the adapter's echo timestamp
(end of frame, mapped onto the run clock). For serial chunks it is the time the write returned.
On a bus whose adapter gives no own echo it is when a second node of the emulated bus saw the frame
(a witness), or not measured at all on a real one (``frames_unmeasured``).
``host["lateness"]`` says which, per bus; ``unseen`` names per bus the frames sent whose echo never
came (count and ids). A negative lateness is a frame sent early; there must be
none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
LATENESS = (*PERCENTILES, "max", "min", "mean", "std")  # lateness statistics, in the summary
STATISTICS = (*LATENESS, "early", "span_error", "count")  # what stat() knows


@dataclass
class ReplayReport:
    frames_planned: int
    frames_sent: int
    frames_echoed: int
    lateness_ns: list[int]
    span_planned_ns: int
    span_actual_ns: int
    start_ns: int
    waits: list[dict[str, Any]] = field(default_factory=list)
    aborted: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    echoes: dict[str, list[tuple[int, int, int, bytes]]] = field(default_factory=dict, repr=False)
    unseen: dict[str, dict[str, Any]] = field(default_factory=dict)  # bus → count and ids never seen back
    frames_unmeasured: int = 0  # sent on buses whose frames no echo or witness shows (their lateness is unknown)
    packets: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict, repr=False)  # network → (sent,
    # timeline step, lateness) per datagram: when it went out (host["lateness"] says how that is known), which it was

    @property
    def frames_early(self) -> int:
        return int(sum(1 for x in self.lateness_ns if x < 0))

    @property
    def span_error(self) -> float:
        """Relative error of the replayed span (last − first frame) against the planned span."""
        if not self.span_planned_ns:
            return 0.0
        return (self.span_actual_ns - self.span_planned_ns) / self.span_planned_ns

    def stat(self, name: str) -> float:
        """A lateness statistic in ns (``p50``, ``p99``, ``p99.9``, ``max``, ``mean``, ...), or
        ``early`` / ``span_error`` / ``count``."""
        if name == "early":
            return float(self.frames_early)
        if name == "span_error":
            return self.span_error
        if name == "count":
            return float(len(self.lateness_ns))
        if not self.lateness_ns:
            return float("nan")
        a = np.asarray(self.lateness_ns, dtype=np.int64)
        if name in PERCENTILES:
            return float(np.percentile(a, PERCENTILES[name]))
        funcs: dict[str, Callable[[], Any]] = {"max": a.max, "min": a.min, "mean": a.mean, "std": a.std}
        if name not in funcs:
            raise KeyError(f"unknown replay statistic {name!r}; expected one of {', '.join(STATISTICS)}")
        return float(funcs[name]())

    def over_budget(self, budget: dict[str, float]) -> list[str]:
        """Budget entries (statistic → limit, ns or a fraction for span_error) that this replay
        exceeds, each as a sentence; ``early`` is always checked against 0."""
        out = []
        if self.frames_early:
            out.append(f"{self.frames_early} frame(s) went out early; expected none")
        for name, limit in budget.items():
            if name == "span_error":
                if abs(self.span_error) > limit:
                    out.append(f"replay span error {self.span_error:+.4%} exceeds the budget ±{limit:.4%}")
            elif (value := self.stat(name)) > limit:
                out.append(f"replay lateness {name} {value / 1000:,.1f} µs exceeds the budget {limit / 1000:,.1f} µs")
        if self.aborted:
            out.append(f"the replay was aborted: {self.aborted}")
        if self.frames_echoed < self.frames_sent - self.frames_unmeasured:  # lateness unknown, not in budget
            ids = "; ".join(f"{bus}: {', '.join(hex(i) for i in u['ids'])}" for bus, u in self.unseen.items())
            out.append(f"{self.frames_sent - self.frames_unmeasured - self.frames_echoed} of {self.frames_sent} "
                       f"frame(s) sent were never seen on the bus" + (f" (ids {ids})" if ids else ""))
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no per-frame data)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("lateness_ns", "echoes", "packets")}
        d["frames_early"] = self.frames_early
        d["span_error"] = self.span_error
        d["lateness_ns"] = {k: (None if not self.lateness_ns else self.stat(k)) for k in LATENESS}
        return d
