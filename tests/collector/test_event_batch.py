"""Batches on the Subscribe stream: framing, limits, and a real collector
that batches only for a subscriber that asked, in order, with no gap."""

from __future__ import annotations

import asyncio
import time

import grpc

from collector.event_batch import encode_batch, take_batch, varint
from collector.fanout import QueueItem, Resync, SubscriberQueue
from metrics_bridge.v1 import collector_pb2, metrics_pb2
from tests.collector.conftest import FAST
from tests.support.processes import ServerProcess, running
from tests.support.timing import scaled


def update(source: str, seq: int) -> bytes:
    event = collector_pb2.CollectorEvent(update=metrics_pb2.Update(source=source, seq=seq))
    return event.SerializeToString()


def resolve(item: QueueItem) -> bytes:
    return b"snapshot" if isinstance(item, Resync) else item.data


def test_a_batch_is_the_protobuf_encoding_of_its_events() -> None:
    events = [update("a", 1), update("a", 2), b"x" * 300]
    decoded = collector_pb2.CollectorEvent.FromString(encode_batch(events))
    assert decoded.WhichOneof("event") == "batch"
    assert list(decoded.batch.events) == events
    expected = collector_pb2.CollectorEvent(batch=collector_pb2.EventBatch(events=events))
    assert encode_batch(events) == expected.SerializeToString()


def test_events_of_every_length_are_framed_as_protobuf_frames_them() -> None:
    lengths = [0, 1, 127, 128, 4095, 4096, 16383, 16384, 70000]
    events = [bytes([n % 256]) * n for n in lengths]
    for some in (events, events[5:]):  # the lengths past the precomputed frames alone too
        expected = collector_pb2.CollectorEvent(batch=collector_pb2.EventBatch(events=some))
        assert encode_batch(some) == expected.SerializeToString()


def test_take_batch_takes_what_is_queued_up_to_max_events() -> None:
    queue = SubscriberQueue(100)
    for seq in range(2, 8):
        queue.offer("a", update("a", seq))
    messages = take_batch(update("a", 1), queue, resolve, max_events=4)
    assert len(messages) == 1
    batch = collector_pb2.CollectorEvent.FromString(messages[0]).batch.events
    assert [collector_pb2.CollectorEvent.FromString(e).update.seq for e in batch] == [1, 2, 3, 4]
    assert len(queue) == 3


def test_one_event_is_sent_as_itself() -> None:
    assert take_batch(update("a", 1), SubscriberQueue(10), resolve, max_events=100) == [
        update("a", 1)
    ]


def test_an_event_that_would_overfill_a_batch_follows_it_alone() -> None:
    queue = SubscriberQueue(10)
    queue.offer("a", b"y" * 600)
    queue.offer("a", b"z" * 10)
    messages = take_batch(b"x" * 500, queue, resolve, max_events=100, max_bytes=1000)
    assert messages == [b"x" * 500, b"y" * 600]
    assert len(queue) == 1


def test_resync_markers_become_the_snapshot_in_the_batch() -> None:
    queue = SubscriberQueue(10)
    queue.resync("b")
    messages = take_batch(update("a", 1), queue, resolve, max_events=10)
    events = collector_pb2.CollectorEvent.FromString(messages[0]).batch.events
    assert list(events) == [update("a", 1), b"snapshot"]


def batch(seq: int) -> collector_pb2.PushRequest:
    return collector_pb2.PushRequest(
        source="batched",
        samples=[
            collector_pb2.Sample(
                name="value",
                labels=[metrics_pb2.Label(name="n", value=str(n))],
                kind=metrics_pb2.METRIC_KIND_GAUGE,
                number=float(seq * 10 + n),
            )
            for n in range(10)
        ],
    )


async def read_until(
    call: grpc.aio.UnaryStreamCall, last_seq: int
) -> tuple[list[collector_pb2.CollectorEvent], int]:
    """The events of `call` (batches unpacked) up to update `last_seq`, and the messages read."""
    events: list[collector_pb2.CollectorEvent] = []
    messages = 0
    async for message in call:
        messages += 1
        event = collector_pb2.CollectorEvent.FromString(message)
        if event.WhichOneof("event") == "batch":
            unpacked = [collector_pb2.CollectorEvent.FromString(e) for e in event.batch.events]
            assert all(e.WhichOneof("event") != "batch" for e in unpacked)
            events += unpacked
        else:
            events.append(event)
        last = events[-1]
        if last.WhichOneof("event") == "update" and last.update.seq >= last_seq:
            break
    return events, messages


def test_a_batch_reads_the_clock_once_and_still_resyncs_what_waited_too_long() -> None:
    now, reads = [0.0], [0]

    def clock() -> float:
        reads[0] += 1
        return now[0]

    queue = SubscriberQueue(100, max_staleness=1.0, clock=clock)
    queue.offer("a", update("a", 1))
    now[0] = 0.5
    for seq in range(2, 6):
        queue.offer("a", update("a", seq))
        queue.offer("b", update("b", seq))
    now[0], reads[0] = 1.2, 0
    first = queue.pop(queue.now())
    assert first == Resync("a", metrics_pb2.RESYNC_REASON_STALE)  # 1.2 s old, newer queued
    [message] = take_batch(resolve(first), queue, resolve, 100)
    batch = collector_pb2.CollectorEvent.FromString(message).batch.events
    assert batch[0] == b"snapshot" and [
        collector_pb2.CollectorEvent.FromString(e).update.seq for e in batch[1:]
    ] == [2, 3, 4, 5]  # b's updates, 0.7 s old: kept; a's dropped for the snapshot
    assert reads[0] == 2  # one for the first pop, one for the whole batch


async def test_a_subscriber_that_asks_gets_batches_in_order_and_one_that_does_not_gets_events() -> (
    None
):
    count = 3000
    # Queues that hold every update for as long as it takes, so neither subscriber is
    # resynced with a snapshot.
    args = [*FAST, "--subscriber-queue", str(count + 10), "--max-staleness", "0"]
    with running("collector", args) as collector:
        await check_batched_and_single(collector, count)


async def check_batched_and_single(collector: ServerProcess, count: int) -> None:
    async with grpc.aio.insecure_channel(collector.addresses["grpc"]) as channel:
        push = channel.stream_unary(
            "/metrics_bridge.v1.MetricsCollector/Push",
            request_serializer=collector_pb2.PushRequest.SerializeToString,
            response_deserializer=collector_pb2.PushResponse.FromString,
        )
        await push(iter([batch(0)]))
        subscribe = channel.unary_stream(
            "/metrics_bridge.v1.MetricsCollector/Subscribe",
            request_serializer=collector_pb2.SubscribeRequest.SerializeToString,
            response_deserializer=None,
        )
        batched = subscribe(
            collector_pb2.SubscribeRequest(sources=["batched"], max_batch_events=64)
        )
        single = subscribe(collector_pb2.SubscribeRequest(sources=["batched"]))
        began = time.monotonic()
        readers = asyncio.gather(read_until(batched, count), read_until(single, count))
        response = await push(iter([batch(seq) for seq in range(1, count)]))
        assert response.position.seq == count
        (events, messages), (plain, plain_messages) = await asyncio.wait_for(readers, scaled(60))
        print(f"{count} updates in {time.monotonic() - began:.1f}s, batched in {messages} messages")
    for received in (events, plain):
        assert received[0].WhichOneof("event") == "snapshot"
        seqs = [received[0].snapshot.seq] + [e.update.seq for e in received[1:]]
        assert seqs == list(range(seqs[0], count + 1)), "in order, no gap, no resync"
    assert plain_messages == len(plain)
    assert messages < len(events)


def test_varint_matches_protobufs_encoding_around_each_length_boundary() -> None:
    assert varint(0) == b"\x00"
    for value in (1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**35 + 5):
        encoded = collector_pb2.PushResponse(batches=value).SerializeToString()
        assert varint(value) == encoded[1:], value  # after the one-byte tag
