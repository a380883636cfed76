"""The pipeline benchmark's path with real processes: pushers -> collector ->
batched Subscribe -> bridge -> WebSocket client. Updates arrive in order with
no gap; extra Subscribe streams (as more bridges) change nothing for it.

The pushers flood, and the collector now outruns a bridge on a loaded 2-core
machine (30,000+ events/s against a bridge slowed to half its speed), so a
subscriber that falls behind is resynced with snapshots: the designed outcome
of its bounded queue, counted in `resyncs`. Without one, every update arrives."""

from __future__ import annotations

from bench.pipeline import measure_pipeline


async def test_every_pushed_update_reaches_the_client_in_order_through_a_batched_stream() -> None:
    result = await measure_pipeline(subscribers=2, pushers=2, series=10, seconds=1.0)
    print(result)
    assert result.pushed > 100
    assert result.gaps == 0
    assert result.delivered > 0
    if result.resyncs == 0:
        assert result.delivered == result.pushed
    else:
        assert result.delivered < result.pushed  # the rest came as snapshots
