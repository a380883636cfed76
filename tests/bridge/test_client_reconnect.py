"""ReconnectPolicy: exponential ceilings with full jitter; close codes decide retrying."""

from __future__ import annotations

import random

from bridge.client.reconnect import ReconnectPolicy, should_reconnect


def test_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    policy = ReconnectPolicy(base=0.5, cap=4.0)
    assert [policy.ceiling(a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_delays_are_spread_over_the_whole_range_below_the_ceiling() -> None:
    policy = ReconnectPolicy(base=1.0, cap=8.0)
    rng = random.Random(1)
    delays = [policy.delay(3, rng) for _ in range(2000)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert min(delays) < 0.8
    assert max(delays) > 7.2
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    assert ReconnectPolicy(base=0.5, cap=30.0).ceiling(10_000) == 30.0


def test_network_failures_and_reconnect_codes_are_retried() -> None:
    assert should_reconnect(None)
    assert should_reconnect(1001)
    assert should_reconnect(1013)
    assert should_reconnect(4000)


def test_a_close_frame_without_a_code_is_retried_like_a_dropped_link() -> None:
    assert should_reconnect(1005)


def test_do_not_retry_codes_are_not_retried() -> None:
    assert not should_reconnect(1000)
    assert not should_reconnect(1008)
    assert not should_reconnect(3000)
    assert not should_reconnect(4500)
