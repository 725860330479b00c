"""The harness error histogram: bucket edges, quantiles within the promised resolution, merging."""

import random

import pytest

from hil.harness import ErrorHistogram, bucket, bucket_bounds, merge_json


def test_every_value_falls_inside_its_bucket_and_buckets_are_contiguous():
    previous_upper = 0
    for i in range(0, 40 * 64):
        lower, upper = bucket_bounds(i)
        assert lower == previous_upper
        assert bucket(lower) == i and bucket(upper - 1) == i
        previous_upper = upper


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 1.0])
def test_quantiles_are_within_one_bucket_of_the_exact_value(q):
    rng = random.Random(7)
    values = [int(rng.lognormvariate(11, 1.5)) for _ in range(5000)]
    h = ErrorHistogram()
    for v in values:
        h.add(v)
    exact = sorted(values)[max(0, -(-int(q * len(values) * 1000) // 1000) - 1)]
    got = h.quantile(q)
    assert exact <= got <= exact * (1 + 1 / 64) + 1


def test_negative_values_count_as_early_and_over_counts_beyond_the_budget():
    h = ErrorHistogram()
    for v in (-5, 10, 1_000, 2_000_000, 3_000_000):
        h.add(v)
    assert h.early == 1 and h.count == 5 and h.max_ns == 3_000_000
    assert h.over(1_000_000) == 2
    assert h.over(5_000_000) == 0
    assert ErrorHistogram().quantile(0.5) is None


def test_json_round_trip_and_merge_add_up():
    a, b = ErrorHistogram(), ErrorHistogram()
    for v in range(0, 100_000, 7):
        a.add(v)
    for v in range(5, 50_000, 3):
        b.add(v)
    merged = merge_json([{"delivery": a.to_json()}, {"delivery": b.to_json(), "send": a.to_json()}])
    d = merged["delivery"]
    assert d.count == a.count + b.count and d.max_ns == a.max_ns
    assert merged["send"].summary() == a.summary()
    assert ErrorHistogram.from_json(a.to_json()) == a
