"""Benchmark: probe pairing of 1M stimulus/response pairs and statistics over 10M samples.

Goals (issue 7): pairing ≤ 1 s, statistics ≥ 50M samples/s. The anchor measured beside ours in the
same run is plain numpy (``np.percentile`` + ``np.histogram`` + ``std``) on the same samples.

    python benchmarks/analysis.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hil.analysis.probes import pair_counter, pair_next
from hil.analysis.stats import describe

PAIR_GOAL_S = 1.0
STATS_GOAL_SPS = 50e6


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x smaller inputs, one repeat")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args()
    pairs, samples, repeats = (100_000, 1_000_000, 1) if args.quick else (1_000_000, 10_000_000, 3)

    rng = np.random.default_rng(0)
    stim = np.arange(pairs, dtype=np.int64) * 1_000_000  # 1 kHz stimulus
    resp = np.sort(stim + rng.integers(100_000, 3_000_000, pairs))  # 0.1..3 ms, some overtaking
    counter = np.arange(pairs) % 256
    resp_counter = counter[np.argsort(stim + rng.integers(100_000, 3_000_000, pairs))]
    lat = rng.integers(200_000, 5_000_000, samples)

    t_next = best_of(lambda: pair_next(stim, resp, 10_000_000), repeats)
    t_counter = best_of(lambda: pair_counter(stim, counter, resp, resp_counter, 10_000_000), repeats)
    t_stats = best_of(lambda: describe(lat, budget=4_000_000), repeats)
    t_numpy = best_of(lambda: (np.percentile(lat, [50, 90, 99, 99.9]), np.histogram(lat, 40), lat.std(),
                               lat.mean(), lat.min(), lat.max()), repeats)
    result = {
        "pairs": pairs, "samples": samples, "quick": args.quick,
        "pair_next_s": t_next, "pair_counter_s": t_counter, "pair_goal_s": PAIR_GOAL_S,
        "stats_s": t_stats, "stats_samples_per_s": samples / t_stats,
        "numpy_stats_s": t_numpy, "numpy_samples_per_s": samples / t_numpy,
        "stats_goal_samples_per_s": STATS_GOAL_SPS,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"probe pairing, {pairs:,} pairs (goal ≤ {PAIR_GOAL_S:.1f} s for 1M)")
    print(f"  next     {t_next * 1e3:8.1f} ms")
    print(f"  counter  {t_counter * 1e3:8.1f} ms")
    print(f"statistics, {samples:,} samples (goal ≥ {STATS_GOAL_SPS / 1e6:.0f}M samples/s)")
    print(f"  hil      {t_stats * 1e3:8.1f} ms  {samples / t_stats / 1e6:6.1f}M samples/s")
    print(f"  numpy    {t_numpy * 1e3:8.1f} ms  {samples / t_numpy / 1e6:6.1f}M samples/s  (anchor: np.percentile + histogram + std)")


if __name__ == "__main__":
    main()
