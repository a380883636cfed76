"""MetricsCollectorService.Subscribe driven in-process (no sockets, a fake clock):
a subscriber that reads nothing for longer than --max-staleness gets the latest
snapshot marked STALE, then updates from it on without a gap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from collector.config import CollectorConfig
from collector.hub import CollectorHub
from collector.series import GAUGE, Descriptor, SeriesKey, SeriesSample
from collector.service import MetricsCollectorService
from metrics_bridge.v1 import collector_pb2, metrics_pb2

PUSH = metrics_pb2.SOURCE_KIND_PUSH
STALE = metrics_pb2.RESYNC_REASON_STALE


class FakeContext:
    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def abort(self, code: object, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def push(hub: CollectorHub, value: float) -> int:
    sample = SeriesSample(SeriesKey.of("v"), Descriptor(GAUGE), value)
    return hub.apply("svc", PUSH, [sample], int(value), received=0).seq


async def read(stream: AsyncIterator[bytes], count: int) -> list[collector_pb2.CollectorEvent]:
    """The next `count` events of the stream, batches unpacked."""
    events: list[collector_pb2.CollectorEvent] = []
    while len(events) < count:
        message = await asyncio.wait_for(anext(stream), 5)
        event = collector_pb2.CollectorEvent.FromString(message)
        if event.WhichOneof("event") == "batch":
            events += [collector_pb2.CollectorEvent.FromString(e) for e in event.batch.events]
        else:
            events.append(event)
    return events


@pytest.mark.parametrize("max_batch_events", [0, 64])
async def test_a_subscriber_that_reads_nothing_past_the_bound_gets_a_stale_snapshot_then_updates(
    max_batch_events: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    limits = CollectorConfig(max_staleness=1.0).hub_limits()
    hub = CollectorHub(limits, epochs=lambda: 7, clock=clock)
    service = MetricsCollectorService(hub, "test", 100)
    push(hub, 1)
    request = collector_pb2.SubscribeRequest(sources=["svc"], max_batch_events=max_batch_events)
    stream = service.Subscribe(request, FakeContext())
    try:
        [first] = await read(stream, 1)
        assert (first.snapshot.seq, first.resync) == (1, 0)
        for value in range(2, 20):
            latest = push(hub, value)
        clock.now = 1.5  # nothing read meanwhile
        with caplog.at_level(logging.WARNING, "collector.service"):
            [resynced] = await read(stream, 1)
        assert resynced.WhichOneof("event") == "snapshot"
        assert (resynced.snapshot.seq, resynced.resync) == (latest, STALE)
        assert resynced.snapshot.epoch == 7
        push(hub, 20), push(hub, 21)
        after = await read(stream, 2)
        assert [e.update.seq for e in after] == [latest + 1, latest + 2]
        assert all(e.resync == 0 for e in after)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    stale_lines = [r for r in caplog.records if "left updates waiting" in r.getMessage()]
    assert len(stale_lines) == 1
