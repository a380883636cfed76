"""Exponential histograms: exact delta sums, explicit buckets at the exponential
boundaries within 128 bounds, and the documented error bound holds."""

from __future__ import annotations

import math
import random

import pytest

from collector.exponential import Buckets, ExponentialHistogramData, relative_error


def histogram_of(values: list[float], scale: int) -> ExponentialHistogramData:
    """What an SDK would record: each value in bucket ceil(log_base(v)) - 1."""
    counts: dict[int, int] = {}
    for v in values:
        index = math.ceil(math.log2(v) * 2**scale) - 1
        counts[index] = counts.get(index, 0) + 1
    low, high = min(counts), max(counts)
    positive = Buckets(low, tuple(counts.get(i, 0) for i in range(low, high + 1)))
    return ExponentialHistogramData(
        scale, 0, positive, Buckets(), len(values), sum(values), min(values), max(values)
    )


def quantile_upper_bound(bounds: tuple[float, ...], counts: tuple[int, ...], q: float) -> float:
    rank = q * sum(counts)
    seen = 0
    for bound, count in zip(bounds, counts, strict=False):
        seen += count
        if seen >= rank:
            return bound
    return math.inf


def test_explicit_buckets_keep_every_count_within_128_bounds_and_the_error_bound() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 2) for _ in range(5000)]
    h = histogram_of(values, scale=6).normalized()
    bounds, counts = h.to_explicit()
    assert len(bounds) <= 128 and len(counts) == len(bounds) + 1
    assert sum(counts) == len(values)
    error = relative_error(h.explicit_scale())
    truth = sorted(values)
    for q in (0.5, 0.9, 0.99):
        estimate = quantile_upper_bound(bounds, counts, q)
        exact = truth[math.ceil(q * len(truth)) - 1]
        assert exact <= estimate <= exact * (1 + error) * (1 + 1e-12)


def test_a_delta_sum_at_different_scales_is_exact_at_the_smaller_scale() -> None:
    a = histogram_of([1.5, 3.0], scale=2)
    b = histogram_of([3.0, 100.0], scale=1)
    total = a.plus(b)
    assert total.scale == 1 and total.count == 4 and total.sum == pytest.approx(107.5)
    assert sum(total.positive.counts) == 4
    assert (total.min, total.max) == (1.5, 100.0)
    assert total == histogram_of([1.5, 3.0, 3.0, 100.0], scale=1)


def test_zero_and_negative_buckets_get_their_own_explicit_buckets() -> None:
    h = ExponentialHistogramData(
        scale=0,
        zero_count=2,
        positive=Buckets(0, (1,)),  # (1, 2]
        negative=Buckets(1, (3,)),  # [-4, -2)
        count=6,
        sum=-8.5,
    )
    assert h.to_explicit() == ((-2.0, 1.0, 2.0), (3, 2, 1, 0))


def test_a_wide_histogram_is_downscaled_until_it_fits() -> None:
    wide = ExponentialHistogramData(0, 0, Buckets(-300, (1,) * 600), Buckets(), 600, 1.0)
    bounds, counts = wide.to_explicit()
    assert len(bounds) <= 128 and sum(counts) == 600
    assert wide.normalized().scale < 0  # 600 buckets do not fit MAX_NATIVE_BUCKETS either


def test_relative_error_is_base_minus_one() -> None:
    assert relative_error(0) == 1.0
    assert relative_error(3) == pytest.approx(2 ** (1 / 8) - 1)
