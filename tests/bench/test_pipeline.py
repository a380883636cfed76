"""The pipeline benchmark's path with real processes: pushers -> collector ->
batched Subscribe -> bridge -> WebSocket client. Every update the collector
accepted arrives, in order, with no gap and no resync; extra Subscribe streams
(as more bridges) change nothing for it."""

from __future__ import annotations

from bench.pipeline import measure_pipeline


async def test_every_pushed_update_reaches_the_client_in_order_through_a_batched_stream() -> None:
    result = await measure_pipeline(subscribers=2, pushers=2, series=10, seconds=1.0)
    print(result)
    assert result.pushed > 100
    assert result.gaps == 0
    assert result.resyncs == 0
    assert result.delivered == result.pushed
