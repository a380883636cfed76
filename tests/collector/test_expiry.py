"""Idle expiry (--source-ttl) against a real collector: subscribers get
SourceRemoved, the source's place is freed, and a later push starts a new epoch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.collector.conftest import recording
from tests.support.processes import running

ARGS = ["--listen", "127.0.0.1:0", "--interval", "0.1", "--host-source", "testhost"]
ARGS += ["--source-ttl", "0.5", "--max-sources", "2"]


async def push(ch: grpc.aio.Channel, source: str, value: float) -> collector_pb2.PushResponse:
    async def one() -> AsyncIterator[collector_pb2.PushRequest]:
        yield collector_pb2.PushRequest(
            source=source,
            samples=[
                collector_pb2.Sample(name="a", kind=metrics_pb2.METRIC_KIND_GAUGE, number=value)
            ],
        )

    stub = collector_pb2_grpc.MetricsCollectorStub(ch)
    response: collector_pb2.PushResponse = await stub.Push(one())
    return response


@contextlib.asynccontextmanager
async def kept_alive(ch: grpc.aio.Channel, source: str) -> AsyncIterator[int]:
    """Pushes to `source` every 0.1 s (well within the ttl); yields its epoch."""
    epoch = (await push(ch, source, 1)).position.epoch

    async def keep() -> None:
        while True:
            await asyncio.sleep(0.1)
            await push(ch, source, 1)

    task = asyncio.create_task(keep())
    try:
        yield epoch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_idle_source_is_removed_and_a_new_push_brings_it_back_with_a_new_epoch() -> None:
    with running("collector", ARGS) as server:
        async with (
            grpc.aio.insecure_channel(server.addresses["grpc"]) as ch,
            recording(ch, ["svc"]) as named,
            recording(ch) as everything,
        ):
            stub = collector_pb2_grpc.MetricsCollectorStub(ch)
            old = (await push(ch, "svc", 1)).position.epoch
            await named.wait_for(lambda: named.of("svc", "source_removed"), 20, "removal")
            await everything.wait_for(lambda: everything.of("svc", "source_removed"), 20, "removal")
            [removed] = named.of("svc", "source_removed")
            assert removed.source_removed.epoch == old
            assert [e.source_removed.epoch for e in everything.of("svc", "source_removed")] == [old]
            listing = await stub.ListSources(collector_pb2.ListSourcesRequest())
            assert "svc" not in {s.name for s in listing.sources}
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetSnapshot(collector_pb2.GetSnapshotRequest(source="svc"))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND

            async with kept_alive(ch, "svc") as new:
                assert new != old
                await named.wait_for(
                    lambda: (
                        named.of("svc", "snapshot")
                        and named.of("svc", "snapshot")[-1].snapshot.epoch == new
                    ),
                    20,
                    "a snapshot of the new epoch",
                )
                last_snapshot = max(
                    i for i, e in enumerate(named.events) if e.WhichOneof("event") == "snapshot"
                )
                assert named.events.index(removed) < last_snapshot
                stale = metrics_pb2.Position(epoch=old, seq=1)
                async with recording(ch, ["svc"], {"svc": stale}) as resumed:
                    await resumed.wait_for(lambda: resumed.events, 20, "a first event")
                assert resumed.events[0].WhichOneof("event") == "snapshot"
                assert resumed.events[0].snapshot.epoch == new
            assert not named.errors and not everything.errors


async def test_an_expired_source_frees_its_place_under_the_source_limit() -> None:
    with running("collector", ARGS) as server:  # the host source is the first of 2
        async with (
            grpc.aio.insecure_channel(server.addresses["grpc"]) as ch,
            recording(ch, ["one"]) as rec,
        ):
            await push(ch, "one", 1)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await push(ch, "two", 1)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            await rec.wait_for(lambda: rec.of("one", "source_removed"), 20, "removal")
            response = await push(ch, "two", 1)
            assert response.position.seq == 1
