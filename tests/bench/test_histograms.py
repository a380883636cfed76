"""bench.histograms: a bridge's /metrics read into counters and windowed histograms."""

from __future__ import annotations

import pytest

from bench.histograms import histogram, labelled, metrics_url, parse, window_summary

NAME = "metrics_bridge_flush_delay_seconds"


def exposition(counts: tuple[int, int, int], total: float, drops: int = 0) -> str:
    """A histogram with buckets 0.001, 0.01, +Inf (cumulative counts) and a drop counter."""
    first, second, third = counts
    return f"""# HELP {NAME} flush
# TYPE {NAME} histogram
{NAME}_bucket{{le="0.001"}} {first}
{NAME}_bucket{{le="0.01"}} {second}
{NAME}_bucket{{le="+Inf"}} {third}
{NAME}_count {third}
{NAME}_sum {total}
# HELP metrics_bridge_dropped_updates_total drops
# TYPE metrics_bridge_dropped_updates_total counter
metrics_bridge_dropped_updates_total{{stage="client",reason="stale"}} {drops}
"""


def test_quantiles_interpolate_inside_the_bucket_that_holds_them() -> None:
    found = histogram(parse(exposition((50, 100, 100), 0.3)), NAME)
    assert found.count == 100
    assert found.quantile(0.5) == pytest.approx(0.001)
    assert found.quantile(0.75) == pytest.approx(0.001 + 0.009 * 0.5)
    assert found.mean == pytest.approx(0.003)


def test_a_quantile_past_the_last_bound_is_that_bound_and_empty_is_none() -> None:
    found = histogram(parse(exposition((0, 0, 10), 50.0)), NAME)
    assert found.quantile(0.99) == pytest.approx(0.01)
    assert histogram(parse(exposition((0, 0, 0), 0.0)), NAME).quantile(0.5) is None
    assert histogram({}, NAME).mean is None


def test_a_window_leaves_out_what_was_observed_before_it() -> None:
    before = parse(exposition((100, 100, 100), 0.05))
    after = parse(exposition((100, 110, 110), 0.1))
    window = histogram(after, NAME).minus(histogram(before, NAME))
    assert window.count == 10
    assert window.quantile(0.5) == pytest.approx(0.0055)
    summary = window_summary(before, after, {"flush": NAME})
    assert summary["flush"]["count"] == 10
    assert summary["flush"]["mean_ms"] == pytest.approx(5.0)
    assert window_summary(None, after, {"flush": NAME})["flush"]["count"] == 110
    assert window_summary(before, None, {"flush": NAME}) == {}


def test_counters_are_named_by_their_label_values() -> None:
    samples = parse(exposition((0, 0, 0), 0.0, drops=7))
    drops = "metrics_bridge_dropped_updates_total"
    assert labelled(samples, drops, ("stage", "reason")) == {"client/stale": 7.0}
    assert labelled(samples, drops) == {"stale/client": 7.0}
    assert labelled(None, "metrics_bridge_dropped_updates_total") == {}


def test_metrics_live_on_the_bridges_websocket_port() -> None:
    assert metrics_url("ws://127.0.0.1:8765/") == "http://127.0.0.1:8765/metrics"
