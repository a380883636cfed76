"""DelayHistogram: delays counted by bucket, exported cumulatively."""

from __future__ import annotations

from bridge.hops import DELAY_BUCKETS, DelayHistogram


def test_a_delay_counts_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    delays = DelayHistogram()
    delays.observe(0.001)
    delays.observe(0.0011)
    delays.observe(99.0)
    buckets = dict(delays.cumulative())
    assert buckets["0.0005"] == 0
    assert buckets["0.001"] == 1
    assert buckets["0.002"] == 2
    assert buckets[repr(DELAY_BUCKETS[-1])] == 2
    assert buckets["+Inf"] == 3
    assert delays.count == 3
    assert delays.sum == 0.001 + 0.0011 + 99.0


def test_a_negative_delay_from_clock_skew_counts_as_zero() -> None:
    delays = DelayHistogram()
    delays.observe(-0.5)
    assert delays.sum == 0.0
    assert dict(delays.cumulative())[repr(DELAY_BUCKETS[0])] == 1
