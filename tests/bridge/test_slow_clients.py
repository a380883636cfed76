"""Clients that stop reading: others are not delayed, the slow one is resynced or closed,
and the bridge's memory stays bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2
from tests.bridge.stack import Pusher, RawClient, bridge, collector, covered_seqs, ready_client
from tests.support.processes import ServerProcess
from tests.support.timing import async_wait_until, scaled

CHANNEL = "c1/svc"
SERIES = 300


def batches(count: int, start: float = 0.0) -> Iterator[collector_pb2.PushRequest]:
    for k in range(count):
        yield collector_pb2.PushRequest(
            source="svc",
            samples=[
                collector_pb2.Sample(
                    name="load",
                    labels=[metrics_pb2.Label(name="i", value=str(i))],
                    kind=metrics_pb2.METRIC_KIND_GAUGE,
                    number=start + k,
                )
                for i in range(SERIES)
            ],
        )


def push(pusher: Pusher, count: int, start: float = 0.0) -> metrics_pb2.Position:
    response = pusher.stub.Push(batches(count, start), timeout=scaled(60))
    position: metrics_pb2.Position = response.position
    return position


@contextmanager
def small_buffers(slow_timeout: str) -> Iterator[tuple[Pusher, ServerProcess]]:
    """A collector with the channel pushed once, and a bridge with small client buffers."""
    with collector() as col:
        pusher = Pusher(col.addresses["grpc"])
        push(pusher, 1)
        try:
            with bridge(
                col.addresses["grpc"],
                "--send-buffer-bytes",
                "4096",
                "--client-buffer-bytes",
                "16384",
                "--slow-client-timeout",
                slow_timeout,
            ) as br:
                yield pusher, br
        finally:
            pusher.close()


def rss_bytes(process: ServerProcess) -> int:
    assert process.proc is not None
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def bodies(messages: list[bridge_pb2.ServerMessage]) -> list[str | None]:
    return [m.WhichOneof("body") for m in messages]


async def test_client_that_stops_reading_does_not_delay_others_and_is_closed_with_4000() -> None:
    with small_buffers(slow_timeout="1") as (pusher, br):
        url = br.addresses["url"]
        fast = await ready_client(url, CHANNEL)
        await fast.subscribe(CHANNEL)
        start = (await fast.next("snapshot")).snapshot.seq
        slow = RawClient(url)
        slow.subscribe(CHANNEL)

        done = threading.Event()
        last: list[metrics_pb2.Position] = []

        def produce() -> None:
            while not done.is_set():
                last.append(push(pusher, 10))

        seqs: list[int] = []
        latencies: list[float] = []

        async def read_fast() -> None:
            while True:
                message = await fast.next("update", "snapshot")
                assert message.HasField("update"), "the fast client was resynced"
                seqs.extend(covered_seqs(message))
                latencies.append(time.time() - message.update.time_unix_ms / 1000)

        producer = threading.Thread(target=produce)
        producer.start()
        reader = asyncio.create_task(read_fast())
        try:
            await async_wait_until(
                lambda: "4000" in br.log() or reader.done(), 60, "the slow client's close"
            )
        finally:
            done.set()
            await asyncio.to_thread(producer.join)
        await async_wait_until(
            lambda: reader.done() or (bool(seqs) and seqs[-1] >= last[-1].seq),
            30,
            "the fast client to get every update",
        )
        if reader.done():
            reader.result()
        reader.cancel()
        # The fast client went through every update, in order, never waiting on the slow one.
        assert seqs == list(range(start + 1, last[-1].seq + 1))
        assert max(latencies) < scaled(1.0), f"fast client lagged {max(latencies):.2f}s"
        messages, code = slow.read_until_closed()
        assert code == 4000
        assert sum(1 for m in messages if m.HasField("update")) < last[-1].seq - start
        slow.close()
        await fast.close()


async def test_client_that_pauses_reading_is_resynced_with_a_fresh_snapshot() -> None:
    with small_buffers(slow_timeout="60") as (pusher, br):
        probe = await ready_client(br.addresses["url"], CHANNEL)
        await probe.close()
        slow = RawClient(br.addresses["url"])
        slow.subscribe(CHANNEL)
        pushed = push(pusher, 100, start=1000.0)
        messages = slow.read_for(scaled(2))
        final = push(pusher, 1, start=5000.0)
        messages += slow.read_for(scaled(2))
        data = [m for m in messages if m.HasField("snapshot") or m.HasField("update")]
        assert data[0].HasField("snapshot")
        position = data[0].snapshot.seq
        skipped = 0
        for message in data[1:]:
            if message.HasField("update"):
                assert message.update.seq == position + 1, "a gap without a snapshot"
                position = message.update.seq
            else:
                assert message.snapshot.seq >= position
                skipped += message.snapshot.seq - position
                position = message.snapshot.seq
        assert skipped > 0, "the paused client was never resynced with a snapshot"
        assert position == final.seq > pushed.seq
        slow.close()


async def test_bridge_memory_stays_bounded_with_many_stuck_clients() -> None:
    clients = 40
    with small_buffers(slow_timeout="300") as (pusher, br):
        probe = await ready_client(br.addresses["url"], CHANNEL)
        stuck = [RawClient(br.addresses["url"]) for _ in range(clients)]
        for client in stuck:
            client.subscribe(CHANNEL)
        push(pusher, 20)
        before = rss_bytes(br)
        published = 0
        for round_ in range(8):
            position = push(pusher, 40, start=round_ * 100.0)
            published += 40 * SERIES * 11
        after = rss_bytes(br)
        # Unbounded buffers would hold every published byte once per stuck client.
        assert published * clients > 30 * 2**20
        growth = after - before
        print(f"bridge RSS grew by {growth / 2**20:.1f} MiB with {clients} stuck clients")
        assert growth < 10 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"
        await probe.subscribe(CHANNEL)
        seq = (await probe.next("snapshot")).snapshot.seq
        while seq < position.seq:
            seq = (await probe.next("update")).update.seq
        for client in stuck:
            client.close()
        await probe.close()
