"""Subscribe with resume against a real collector."""

from __future__ import annotations

import grpc

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.collector.conftest import recording
from tests.support.processes import running
from tests.support.timing import async_wait_until

HOST = "testhost"


async def host_position(ch: grpc.aio.Channel) -> metrics_pb2.Position:
    stub = collector_pb2_grpc.MetricsCollectorStub(ch)
    sources = await stub.ListSources(collector_pb2.ListSourcesRequest())
    [host] = [s for s in sources.sources if s.name == HOST]
    position: metrics_pb2.Position = host.position
    return position


async def wait_past(ch: grpc.aio.Channel, seq: int) -> None:
    async def moved() -> bool:
        return (await host_position(ch)).seq > seq

    await async_wait_until(moved, 20, f"the host source past seq {seq}")


async def test_resume_within_the_window_replays_exactly_the_missing_updates(
    channel: grpc.aio.Channel,
) -> None:
    position = await host_position(channel)
    await wait_past(channel, position.seq + 3)
    async with recording(channel, [HOST], {HOST: position}) as rec:
        await rec.wait_for(lambda: len(rec.events) >= 4, 20, "replayed updates")
    kinds = {e.WhichOneof("event") for e in rec.events}
    assert kinds == {"update"}
    seqs = [e.update.seq for e in rec.events]
    assert seqs == list(range(position.seq + 1, position.seq + 1 + len(seqs)))
    assert all(e.update.epoch == position.epoch for e in rec.events)


async def test_resume_at_the_current_position_sends_no_snapshot(
    channel: grpc.aio.Channel,
) -> None:
    position = await host_position(channel)
    async with recording(channel, [HOST], {HOST: position}) as rec:
        await rec.wait_for(lambda: len(rec.events) >= 1, 20, "the next update")
    first = rec.events[0]
    assert first.WhichOneof("event") == "update"
    assert first.update.seq > position.seq


async def test_resume_with_an_old_epoch_gets_a_snapshot(channel: grpc.aio.Channel) -> None:
    position = await host_position(channel)
    stale = metrics_pb2.Position(epoch=position.epoch ^ 1, seq=position.seq)
    async with recording(channel, [HOST], {HOST: stale}) as rec:
        await rec.wait_for(lambda: len(rec.events) >= 1, 20, "a first event")
    assert rec.events[0].WhichOneof("event") == "snapshot"
    assert rec.events[0].snapshot.epoch == position.epoch


async def test_resume_beyond_the_window_gets_a_snapshot() -> None:
    args = ["--listen", "127.0.0.1:0", "--interval", "0.05", "--resume-window", "3"]
    args += ["--host-source", HOST]
    with running("collector", args) as server:
        async with grpc.aio.insecure_channel(server.addresses["grpc"]) as ch:
            position = await host_position(ch)
            await wait_past(ch, position.seq + 5)
            async with recording(ch, [HOST], {HOST: position}) as rec:
                await rec.wait_for(lambda: len(rec.events) >= 2, 20, "snapshot and an update")
    assert rec.events[0].WhichOneof("event") == "snapshot"
    assert rec.events[0].snapshot.seq > position.seq + 3
    assert rec.events[1].update.seq == rec.events[0].snapshot.seq + 1
