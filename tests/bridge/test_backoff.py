"""Reconnect backoff: 1 s, x1.6, +-20 % jitter, capped at 120 s."""

from __future__ import annotations

import random

from bridge.backoff import Backoff


def test_delays_grow_by_1_6_within_20_percent_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(10):
        base = min(1.6**attempt, 120)
        delay = Backoff().delay(attempt, rng)
        assert 0.8 * base <= delay <= 1.2 * base


def test_delay_is_capped_at_120_seconds_plus_jitter() -> None:
    delays = [Backoff().delay(1000, random.Random(seed)) for seed in range(50)]
    assert max(delays) <= 144
    assert min(delays) >= 96


def test_jitter_spreads_delays() -> None:
    delays = {round(Backoff().delay(3, random.Random(seed)), 6) for seed in range(20)}
    assert len(delays) > 10
