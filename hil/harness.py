"""Harness error: how far the emulation strayed from its own model, measured on every run.

The emulated buses promise a timeline (frames on the wire at modelled times); the processes that
keep that promise (simbus broker, ``simcan`` nodes, the injector) measure, frame by frame, how far
reality was from it, so every latency hil reports carries the error of the instrument beside it.
Each kind of error is kept in an :class:`ErrorHistogram`: fixed log-linear buckets (64 per octave,
so any quantile is known within 1.6 %), cheap to fill in a hot path, mergeable across processes
and small in JSON. Per bus the errors travel as ``{kind: histogram JSON}`` with these kinds:

``delivery``  a node handed a frame to its application (``recv`` returned) minus the frame's
              end-of-frame time; an emulated Cortex-M adds its own lateness with frames to its
              node's (:mod:`hil.cortexm.core`)
``send``      how late the broker learned of a frame, against the time its node wrote it
``broker``    how late the broker acted (woke) against the time it had planned to
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUB_BITS = 6
SUB = 1 << SUB_BITS  # buckets per octave
KINDS = ("delivery", "send", "broker")


def bucket(ns: int) -> int:
    """The bucket index of a non-negative value: exact below 128 ns, then 64 buckets per octave."""
    if ns < 2 * SUB:
        return ns
    shift = ns.bit_length() - SUB_BITS - 1
    return shift * SUB + (ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """[lower, upper) of bucket ``index`` in ns."""
    if index < 2 * SUB:
        return index, index + 1
    shift = index // SUB - 1
    mantissa = index - shift * SUB
    return mantissa << shift, (mantissa + 1) << shift


@dataclass
class ErrorHistogram:
    """Non-negative errors in ns; a negative value (ahead of the model) is counted in ``early``
    and kept as 0 in the buckets."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    early: int = 0
    max_ns: int = 0
    sum_ns: int = 0

    def add(self, ns: int) -> None:
        if ns < 0:
            self.early += 1
            ns = 0
        i = bucket(ns)
        counts = self.counts
        counts[i] = counts.get(i, 0) + 1
        self.count += 1
        self.sum_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def merge(self, other: ErrorHistogram) -> None:
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        self.count += other.count
        self.early += other.early
        self.sum_ns += other.sum_ns
        self.max_ns = max(self.max_ns, other.max_ns)

    def quantile(self, q: float) -> int | None:
        """The value at quantile ``q`` (0..1): the upper edge of its bucket, never above the
        maximum seen; None when empty."""
        if not self.count:
            return None
        rank = max(1, -(-q * self.count // 1))  # ceil, at least the first sample
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return min(bucket_bounds(i)[1] - 1, self.max_ns)
        return self.max_ns

    def over(self, budget_ns: int) -> int:
        """How many samples exceed ``budget_ns`` (at bucket resolution: within 1.6 %)."""
        return sum(n for i, n in self.counts.items() if bucket_bounds(i)[0] > budget_ns)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: count, early, p50/p99/max and mean in ns."""
        return {"count": self.count, "early": self.early, "p50_ns": self.quantile(0.5),
                "p99_ns": self.quantile(0.99), "max_ns": self.max_ns if self.count else None,
                "mean_ns": self.sum_ns / self.count if self.count else None}

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "early": self.early, "max_ns": self.max_ns, "sum_ns": self.sum_ns,
                "buckets": sorted(self.counts.items())}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorHistogram:
        return cls({int(i): int(n) for i, n in data.get("buckets", [])}, int(data.get("count", 0)),
                   int(data.get("early", 0)), int(data.get("max_ns", 0)), int(data.get("sum_ns", 0)))


def merge_json(parts: list[dict[str, dict[str, Any]]]) -> dict[str, ErrorHistogram]:
    """Several ``{kind: histogram JSON}`` (nodes, processes) merged into one ``{kind: histogram}``."""
    out: dict[str, ErrorHistogram] = {}
    for part in parts:
        for kind, data in part.items():
            out.setdefault(kind, ErrorHistogram()).merge(ErrorHistogram.from_json(data))
    return out
