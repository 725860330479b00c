"""Statistics agree with numpy's definitions; deadline misses include missed responses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.analysis.stats import PERCENTILES, Stats, describe


@pytest.mark.parametrize("values", [
    np.random.default_rng(1).integers(1_000, 9_000_000, 100_001),
    np.random.default_rng(2).exponential(1.0, 5_000) ** 4,  # a long tail
    np.array([7, 7, 7, 7]),
    np.array([42]),
    np.array([3, 1, 2]),
])
def test_percentiles_and_moments_match_numpy(values):
    s = describe(values)
    for name, q in PERCENTILES.items():
        assert s.get(name) == pytest.approx(np.percentile(values, q), rel=1e-12), name
    assert (s.min, s.max, s.count) == (values.min(), values.max(), len(values))
    assert s.mean == pytest.approx(values.mean(), rel=1e-12)
    assert s.std == pytest.approx(values.std(), rel=1e-9, abs=1e-12)
    assert (s.first, s.last) == (values[0], values[-1])


def test_histogram_covers_every_sample_in_equal_bins():
    values = np.arange(1000)
    s = describe(values, bins=10)
    assert s.hist_counts == [100] * 10
    assert s.hist_edges[0] == 0 and s.hist_edges[-1] == pytest.approx(999)
    assert sum(describe(np.random.default_rng(3).normal(size=777)).hist_counts) == 777


def test_deadline_misses_count_late_and_missed():
    s = describe(np.array([1, 5, 9, 10, 11]), missed=2, budget=9)
    assert s.deadline_misses == 2 + 2  # 10 and 11 over budget, plus the two never answered
    assert describe(np.array([1]), budget=None).deadline_misses is None


def test_empty_column_is_nan_not_zero():
    s = describe(np.zeros(0, np.int64), missed=3, budget=5)
    assert s.count == 0 and s.missed == 3 and s.deadline_misses == 3
    assert math.isnan(s.p99) and math.isnan(s.get("max"))


def test_json_round_trip_keeps_nan_as_null():
    s = describe(np.zeros(0, np.int64), missed=1)
    d = s.to_json()
    assert d["p50"] is None and d["missed"] == 1
    assert math.isnan(Stats.from_json(d).p50)
    full = describe(np.array([1, 2, 3]), budget=2)
    assert Stats.from_json(full.to_json()) == full


def test_non_finite_values_are_left_out():
    s = describe(np.array([1.0, np.nan, 3.0, np.inf]))
    assert (s.count, s.min, s.max, s.mean) == (2, 1.0, 3.0, 2.0)
