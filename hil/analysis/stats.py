"""Summary statistics of a sample column: latency, cycle time or signal values.

Exact percentiles from one fine-binned ``bincount`` (which also gives the histogram) plus a sort of
the few bins that hold them, ``mean``/``std`` in float64, a
fixed-bin histogram. ``missed`` and ``deadline_misses`` only make sense for latencies: a missed
response also missed its deadline, so ``deadline_misses = missed + (latencies over budget)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
HISTOGRAM_BINS = 40
FINE = 100  # fine bins per histogram bin, to locate percentiles without a full sort


@dataclass(frozen=True)
class Stats:
    """Statistics of one column, in the column's own unit (ns for times). NaN where undefined."""

    count: int
    missed: int
    min: float
    p50: float
    p90: float
    p99: float
    p99_9: float
    max: float
    mean: float
    std: float
    first: float
    last: float
    deadline_misses: int | None
    hist_edges: list[float]
    hist_counts: list[int]

    def get(self, stat: str) -> float:
        """A statistic by its suite name (``p99.9``, ``deadline_misses``, ...)."""
        value = getattr(self, stat.replace(".", "_"))
        return math.nan if value is None else float(value)

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Stats:
        fields: dict[str, Any] = {k: (math.nan if v is None and k not in ("deadline_misses",) else v)
                                  for k, v in d.items()}
        return cls(**fields)


def describe(values: np.ndarray, missed: int = 0, budget: float | None = None,
             bins: int = HISTOGRAM_BINS) -> Stats:
    """Statistics of ``values`` (in time order, for ``first``/``last``); percentiles as numpy's
    default (linear) method."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        values = values[np.isfinite(values)]  # NaN / inf decoded from raw float bits carry no value
    n = len(values)
    late = None if budget is None else missed + int(np.count_nonzero(values > budget))
    if n == 0:
        nan = math.nan
        return Stats(0, missed, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, late, [], [])
    lo, hi = values.min(), values.max()
    mean = float(values.sum(dtype=np.float64)) / n
    nbins = bins * FINE
    fine = np.zeros(nbins, np.int64)
    squares = 0.0
    for chunk in _chunks(values):  # cache-sized pieces: no 10M-element temporaries
        fine += np.bincount(_bin_index(chunk, lo, hi, nbins), minlength=nbins)
        centred = chunk - mean
        squares += float(np.dot(centred, centred))
    ranks = [q / 100 * (n - 1) for q in PERCENTILES.values()]
    order = _order_statistics(values, lo, hi, fine, {math.floor(r) for r in ranks} | {math.ceil(r) for r in ranks})
    pct = [order[math.floor(r)] + (order[math.ceil(r)] - order[math.floor(r)]) * (r - math.floor(r))
           for r in ranks]  # linear interpolation: numpy's default percentile method
    width = (float(hi) - float(lo)) / bins
    return Stats(
        count=n, missed=missed, min=float(lo), p50=pct[0], p90=pct[1], p99=pct[2], p99_9=pct[3],
        max=float(hi), mean=mean, std=math.sqrt(squares / n), first=float(values[0]),
        last=float(values[-1]), deadline_misses=late,
        hist_edges=[float(lo) + i * width for i in range(bins + 1)],
        hist_counts=fine.reshape(bins, FINE).sum(axis=1).tolist())


def _chunks(values: np.ndarray, size: int = 1 << 18):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _bin_index(values: np.ndarray, lo, hi, bins: int) -> np.ndarray:
    """Equal-width bin of every value, from min to max; a non-decreasing function of the value.
    Integer columns (ns) use an in-place multiply-shift instead of a float division."""
    span = float(hi) - float(lo)
    if np.issubdtype(values.dtype, np.integer) and 0 < span < 2**40 and bins < 2**20:
        index = values - np.int64(lo) if values.dtype == np.int64 else values.astype(np.int64) - np.int64(lo)
        index *= np.int64((bins << 40) // (int(hi) - int(lo) + 1))
        index >>= np.int64(40)
    else:
        index = ((values - lo) * (bins / (span or 1.0))).astype(np.intp)
        np.minimum(index, bins - 1, out=index)
    return index


def _order_statistics(values: np.ndarray, lo, hi, per_bin: np.ndarray, ranks: set[int]) -> dict[int, float]:
    """Exact values of the given ranks without sorting everything: the fine histogram says which
    bin holds each rank, and only the values of those bins are sorted."""
    below = np.cumsum(per_bin) - per_bin  # values in lower bins
    wanted = sorted(ranks)
    holding = np.searchsorted(below + per_bin, wanted, side="right")
    chosen = np.unique(holding)
    take = np.zeros(len(per_bin), bool)
    take[chosen] = True
    parts = [chunk[take[_bin_index(chunk, lo, hi, len(per_bin))]] for chunk in _chunks(values)]
    subset = np.sort(np.concatenate(parts))  # bins are ordered, so the subset is grouped by bin
    start = dict(zip(chosen.tolist(), (np.cumsum(per_bin[chosen]) - per_bin[chosen]).tolist()))
    return {k: float(subset[start[b] + k - below[b]]) for k, b in zip(wanted, holding.tolist())}
