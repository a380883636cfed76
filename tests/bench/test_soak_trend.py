"""Soak verdicts: least-squares slopes over the second half; RSS <= 2 %/10 min, fds flat."""

from __future__ import annotations

import pytest

from bench.soak_trend import slope, trend


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)
    assert slope([0, 1, 2], [5, 5, 5]) == 0.0
    assert slope([1], [1]) == 0.0


def test_only_the_second_half_counts() -> None:
    times = [0.0, 30, 60, 90, 120, 150]
    warmup = [10e6, 50e6, 100e6, 100e6, 100e6, 100e6]
    fds = [10, 50, 60, 60, 60, 60]
    result = trend(times, warmup, fds)
    assert result.rss_bytes_per_s == 0.0 and result.fd_growth == 0.0
    assert result.flat


def test_rss_growing_over_2_percent_per_10_minutes_is_not_flat() -> None:
    times = [float(t) for t in range(0, 1200, 30)]
    rss = [100e6 * (1 + 0.03 * t / 600) for t in times]  # 3 % per 10 minutes
    assert not trend(times, rss, [40.0] * len(times)).flat
    slow = [100e6 * (1 + 0.01 * t / 600) for t in times]
    assert trend(times, slow, [40.0] * len(times)).flat


def test_any_descriptor_growth_is_not_flat() -> None:
    times = [float(t) for t in range(0, 600, 30)]
    fds = [40.0 + (t > 400) * 2 for t in times]
    result = trend(times, [100e6] * len(times), fds)
    assert result.fd_growth >= 1
    assert not result.flat


def test_descriptors_following_the_connections_are_not_growth() -> None:
    times = [float(t) for t in range(0, 600, 30)]
    connections = [990.0 + i for i in range(len(times))]  # clients keep arriving
    fds = [c + 12 for c in connections]
    flat_rss = [100e6] * len(times)
    assert not trend(times, flat_rss, fds).flat
    assert trend(times, flat_rss, fds, connections).flat
    leaking = [c + 12 + t / 60 for c, t in zip(connections, times, strict=True)]
    assert not trend(times, flat_rss, leaking, connections).flat


def test_a_sample_without_a_connection_count_is_left_out_of_the_descriptor_fit() -> None:
    times = [0.0, 30, 60, 90, 120, 150]
    connections = [100.0, 100, 100, 100, 100, float("nan")]
    fds = [110.0, 110, 110, 110, 110, 500]
    assert trend(times, [1e8] * 6, fds, connections).fd_growth == 0.0


def test_descriptor_noise_is_not_growth_but_a_steady_rise_through_it_is() -> None:
    times = [float(t) for t in range(0, 1800, 30)]
    noise = [float((i * 7) % 5) for i in range(len(times))]  # 0..4 off, in no order
    noise[-1] = noise[-2] = 4.0  # a fit that gains over one descriptor by chance
    result = trend(times, [100e6] * len(times), [12 + n for n in noise])
    assert result.fd_growth >= 1
    assert not result.fds_grow and result.flat
    rising = [12 + n + t / 300 for n, t in zip(noise, times, strict=True)]  # +3 over the half
    assert trend(times, [100e6] * len(times), rising).fds_grow
