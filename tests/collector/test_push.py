"""Push against a real collector: subscribers see pushed values, bad batches
are refused naming the field and lose nothing accepted before them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.collector.conftest import recording
from tests.support.processes import running

GAUGE = metrics_pb2.METRIC_KIND_GAUGE


def gauge(name: str, value: float, **labels: str) -> collector_pb2.Sample:
    return collector_pb2.Sample(
        name=name,
        kind=GAUGE,
        number=value,
        labels=[metrics_pb2.Label(name=k, value=v) for k, v in labels.items()],
    )


async def push(
    ch: grpc.aio.Channel, *batches: collector_pb2.PushRequest
) -> collector_pb2.PushResponse:
    async def requests() -> AsyncIterator[collector_pb2.PushRequest]:
        for b in batches:
            yield b

    stub = collector_pb2_grpc.MetricsCollectorStub(ch)
    response: collector_pb2.PushResponse = await stub.Push(requests())
    return response


async def test_a_subscriber_sees_pushed_values(channel: grpc.aio.Channel) -> None:
    async with recording(channel, ["orders"]) as rec:
        response = await push(
            channel,
            collector_pb2.PushRequest(source="orders", samples=[gauge("queue_depth", 3, q="a")]),
            collector_pb2.PushRequest(source="orders", samples=[gauge("queue_depth", 5, q="a")]),
        )
        assert (response.batches, response.samples, response.position.seq) == (2, 2, 2)
        await rec.wait_for(
            lambda: "orders" in rec.replicas and rec.replicas["orders"].seq == 2, 10, "both batches"
        )
        assert rec.replicas["orders"].get("queue_depth", q="a") == 5
        assert rec.replicas["orders"].epoch == response.position.epoch


async def test_invalid_batch_is_refused_naming_the_field_and_earlier_data_stays(
    channel: grpc.aio.Channel,
) -> None:
    ok = collector_pb2.PushRequest(source="billing", samples=[gauge("invoices", 7)])
    bad = collector_pb2.PushRequest(
        source="billing",
        samples=[
            gauge("a", 1),
            gauge("b", 1),
            gauge("c", 1),
            gauge("d", 1, ok="1", **{"bad-": "x"}),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await push(channel, ok, bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "samples[3].labels[1].name" in (info.value.details() or "")
    stub = collector_pb2_grpc.MetricsCollectorStub(channel)
    snapshot = await stub.GetSnapshot(collector_pb2.GetSnapshotRequest(source="billing"))
    assert [s.name for s in snapshot.series] == ["invoices"]
    assert list(snapshot.values.numbers) == [7] and snapshot.seq == 1


async def test_series_limit_is_resource_exhausted_and_keeps_what_was_accepted() -> None:
    args = ["--listen", "127.0.0.1:0", "--max-series-per-source", "3", "--interval", "5"]
    with running("collector", args) as server:
        async with grpc.aio.insecure_channel(server.addresses["grpc"]) as ch:
            first = collector_pb2.PushRequest(source="s", samples=[gauge("a", 1), gauge("b", 1)])
            too_many = collector_pb2.PushRequest(source="s", samples=[gauge("c", 1), gauge("d", 1)])
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await push(ch, first, too_many)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limit of 3" in (info.value.details() or "")
            stub = collector_pb2_grpc.MetricsCollectorStub(ch)
            snapshot = await stub.GetSnapshot(collector_pb2.GetSnapshotRequest(source="s"))
            assert sorted(s.name for s in snapshot.series) == ["a", "b"]


async def test_source_limit_refuses_a_new_source_but_serves_existing_ones() -> None:
    args = ["--listen", "127.0.0.1:0", "--max-sources", "2", "--interval", "5"]
    with running("collector", args) as server:  # the host source is the first of 2
        async with grpc.aio.insecure_channel(server.addresses["grpc"]) as ch:
            await push(ch, collector_pb2.PushRequest(source="one", samples=[gauge("a", 1)]))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await push(ch, collector_pb2.PushRequest(source="two", samples=[gauge("a", 1)]))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limit of 2 sources" in (info.value.details() or "")
            response = await push(
                ch, collector_pb2.PushRequest(source="one", samples=[gauge("a", 2)])
            )
            assert response.position.seq == 2


async def test_removing_a_series_reaches_subscribers(channel: grpc.aio.Channel) -> None:
    async with recording(channel, ["shipping"]) as rec:
        await push(
            channel,
            collector_pb2.PushRequest(source="shipping", samples=[gauge("a", 1), gauge("b", 2)]),
            collector_pb2.PushRequest(
                source="shipping", samples=[collector_pb2.Sample(name="a", remove=True)]
            ),
        )
        await rec.wait_for(
            lambda: "shipping" in rec.replicas and rec.replicas["shipping"].seq == 2, 10, "removal"
        )
        assert rec.replicas["shipping"].get("a") is None
        assert rec.replicas["shipping"].get("b") == 2


async def test_pushing_to_the_host_source_is_refused(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await push(channel, collector_pb2.PushRequest(source="testhost", samples=[gauge("a", 1)]))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_unknown_source_snapshot_is_not_found(channel: grpc.aio.Channel) -> None:
    stub = collector_pb2_grpc.MetricsCollectorStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetSnapshot(collector_pb2.GetSnapshotRequest(source="never-pushed"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def push_batches(
    ch: grpc.aio.Channel, *messages: list[collector_pb2.PushRequest]
) -> collector_pb2.PushResponse:
    async def requests() -> AsyncIterator[collector_pb2.PushBatchesRequest]:
        for batches in messages:
            yield collector_pb2.PushBatchesRequest(batches=batches)

    stub = collector_pb2_grpc.MetricsCollectorStub(ch)
    response: collector_pb2.PushResponse = await stub.PushBatches(requests())
    return response


async def test_push_batches_applies_each_batch_of_a_message_as_its_own_update(
    channel: grpc.aio.Channel,
) -> None:
    def batch(value: float) -> collector_pb2.PushRequest:
        return collector_pb2.PushRequest(source="bulk", samples=[gauge("depth", value)])

    await push(channel, batch(1))
    async with recording(channel, ["bulk"]) as rec:
        await rec.wait_for(lambda: "bulk" in rec.replicas, 10, "the snapshot")
        response = await push_batches(channel, [batch(2), batch(3), batch(4)], [batch(5)])
        assert (response.batches, response.samples, response.position.seq) == (4, 4, 5)
        await rec.wait_for(lambda: rec.replicas["bulk"].seq == 5, 10, "four updates")
    updates = [e.update for e in rec.events if e.WhichOneof("event") == "update"]
    assert [(u.seq, list(u.values.numbers)) for u in updates] == [
        (2, [2.0]),
        (3, [3.0]),
        (4, [4.0]),
        (5, [5.0]),
    ]
    assert rec.replicas["bulk"].get("depth") == 5


async def test_push_batches_numbers_a_bad_batch_across_the_call_and_keeps_earlier_ones(
    channel: grpc.aio.Channel,
) -> None:
    ok = [collector_pb2.PushRequest(source="bulk2", samples=[gauge("n", i)]) for i in range(3)]
    bad = collector_pb2.PushRequest(source="bulk2", samples=[gauge("n", float("nan"))])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await push_batches(channel, ok[:2], [ok[2], bad])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("batch 3 (0-based) rejected: samples[0].number")
    stub = collector_pb2_grpc.MetricsCollectorStub(channel)
    snapshot = await stub.GetSnapshot(collector_pb2.GetSnapshotRequest(source="bulk2"))
    assert snapshot.seq == 3 and list(snapshot.values.numbers) == [2]


async def test_push_batches_refuses_a_message_over_its_batch_limit(
    channel: grpc.aio.Channel,
) -> None:
    many = [collector_pb2.PushRequest(source="bulk3", samples=[gauge("n", i)]) for i in range(1025)]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await push_batches(channel, many)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batches: at most 1024 per message, got 1025" in (info.value.details() or "")


async def test_bytes_that_do_not_parse_are_invalid_argument_naming_the_batch(
    channel: grpc.aio.Channel,
) -> None:
    async def garbage() -> AsyncIterator[bytes]:
        yield collector_pb2.PushRequest(source="raw", samples=[gauge("g", 1)]).SerializeToString()
        yield b"\x0a\xff"  # a source whose length runs past the end

    call = channel.stream_unary(
        "/metrics_bridge.v1.MetricsCollector/Push",
        request_serializer=bytes,
        response_deserializer=collector_pb2.PushResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(garbage())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith(
        "batch 1 (0-based) rejected: batch: not an encoded PushRequest"
    )
