"""A collector that sends bad data: the bridge resyncs that channel, the others go on.

A scripted collector (a real gRPC server in this process) sends a seq that
jumps, an update of another epoch mid-stream, and bytes that do not parse.
The bridge (a real process) never passes any of it on: it fetches the
channel's snapshot (GetSnapshot), logs why, counts it in /metrics, keeps its
stream (no interruption), and the other channel's subscriber sees every
update once, in order, with no status change.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2
from tests.reliability.fake_collector import FakeCollector
from tests.support.processes import ServerProcess, running
from tests.support.timing import async_wait_until, wait_until

GAUGE = metrics_pb2.METRIC_KIND_GAUGE


def snapshot(source: str, epoch: int, seq: int, value: float) -> metrics_pb2.Snapshot:
    out = metrics_pb2.Snapshot(
        source=source, kind=metrics_pb2.SOURCE_KIND_PUSH, epoch=epoch, seq=seq
    )
    out.series.add(id=1, name="v", kind=GAUGE)
    out.values.ids.append(1)
    out.values.numbers.append(value)
    return out


def update(source: str, epoch: int, seq: int, value: float) -> bytes:
    out = metrics_pb2.Update(source=source, epoch=epoch, seq=seq)
    out.values.ids.append(1)
    out.values.numbers.append(value)
    return collector_pb2.CollectorEvent(update=out).SerializeToString()


@pytest.fixture
def fake() -> Iterator[FakeCollector]:
    collector = FakeCollector()
    collector.truth = {"a": snapshot("a", 1, 0, 0.0), "b": snapshot("b", 1, 0, 0.0)}
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture
def bridge(fake: FakeCollector) -> Iterator[ServerProcess]:
    args = ["--listen", "127.0.0.1:0", "--collector", f"fake={fake.address}"]
    with running("bridge", args) as server:
        yield server


class Watcher:
    """One client subscribed to a channel; checks every update continues its position."""

    def __init__(self, ws: ClientConnection, channel: str) -> None:
        self.ws = ws
        self.channel = channel
        self.position: tuple[int, int] | None = None
        self.value = 0.0
        self.updates = 0
        self.snapshots = 0
        self.statuses: list[int] = []
        self.broken: list[str] = []

    async def read(self) -> None:
        async for data in self.ws:
            message = bridge_pb2.ServerMessage.FromString(data)  # type: ignore[arg-type]
            if message.channel != self.channel:
                continue
            body = message.WhichOneof("body")
            if body == "snapshot":
                self.snapshots += 1
                self.position = (message.snapshot.epoch, message.snapshot.seq)
                self.value = message.snapshot.values.numbers[0]
            elif body == "update":
                u = message.update
                if self.position != (u.epoch, u.seq - 1):
                    self.broken.append(f"update {(u.epoch, u.seq)} after {self.position}")
                self.position = (u.epoch, u.seq)
                self.updates += 1
                self.value = u.values.numbers[0]
            elif body == "status":
                self.statuses.append(message.status.state)


async def watch(url: str, channel: str) -> tuple[Watcher, asyncio.Task[None]]:
    ws = await connect(url, subprotocols=[Subprotocol("metrics-bridge.v1")])
    request = bridge_pb2.ClientMessage()
    request.subscribe.channels.add(channel=channel)
    await ws.send(request.SerializeToString())
    watcher = Watcher(ws, channel)
    return watcher, asyncio.create_task(watcher.read())


def metrics(bridge: ServerProcess) -> str:
    url = f"http://{bridge.addresses['ws']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode())


async def scenario(fake: FakeCollector, bridge: ServerProcess) -> tuple[Watcher, Watcher]:
    def listed() -> bool:
        exposition = metrics(bridge)
        return all(f'channel_seq{{channel="fake/{s}"}}' in exposition for s in ("a", "b"))

    await asyncio.to_thread(wait_until, listed, 20, "the bridge to list fake/a and fake/b")
    a, a_task = await watch(bridge.addresses["url"], "fake/a")
    b, b_task = await watch(bridge.addresses["url"], "fake/b")
    await async_wait_until(lambda: a.position == b.position == (1, 0), 10, "both snapshots")
    b_seq = 0

    def b_update() -> None:
        nonlocal b_seq
        b_seq += 1
        fake.send(update("b", 1, b_seq, float(b_seq)))

    for seq in (1, 2):
        fake.send(update("a", 1, seq, float(seq)))
        b_update()
    await async_wait_until(lambda: a.position == (1, 2), 10, "a at (1, 2)")

    # 1. A seq that jumps: the collector's real state is (1, 5).
    fake.truth["a"] = snapshot("a", 1, 5, 50.0)
    fake.send(update("a", 1, 5, 50.0))
    b_update()
    await async_wait_until(lambda: a.position == (1, 5), 10, "a resynced at (1, 5)")
    assert a.value == 50.0
    fake.send(update("a", 1, 6, 60.0))
    b_update()
    await async_wait_until(lambda: a.position == (1, 6), 10, "a going on at (1, 6)")

    # 2. Another epoch mid-stream: the collector restarted that source at (2, 1).
    fake.truth["a"] = snapshot("a", 2, 1, 21.0)
    fake.send(update("a", 2, 1, 21.0))
    b_update()
    await async_wait_until(lambda: a.position == (2, 1), 10, "a resynced at (2, 1)")
    fake.send(update("a", 2, 2, 22.0))
    b_update()
    await async_wait_until(lambda: a.position == (2, 2), 10, "a going on at (2, 2)")

    # 3. Bytes that do not parse: every source is fetched again.
    fake.truth["a"] = snapshot("a", 2, 2, 22.0)
    fake.truth["b"] = snapshot("b", 1, b_seq, float(b_seq))
    before = a.snapshots
    fake.send(b"\xff\xff\xff\xff")
    await async_wait_until(lambda: a.snapshots > before, 10, "a resynced after garbage")
    for _ in range(3):
        b_update()
    await async_wait_until(lambda: b.position == (1, b_seq), 10, f"b at (1, {b_seq})")
    for task in (a_task, b_task):
        task.cancel()
    await a.ws.close()
    await b.ws.close()
    return a, b


def test_bad_upstream_data_resyncs_the_channel_and_the_others_go_on(
    fake: FakeCollector, bridge: ServerProcess
) -> None:
    a, b = asyncio.run(scenario(fake, bridge))
    assert a.broken == [] and b.broken == []
    assert b.statuses == [] and a.statuses == []
    assert b.updates == b.position[1] if b.position else False  # b: every update, once
    assert fake.subscribes == 1  # the stream was never restarted
    assert fake.snapshot_requests.count("a") == 3
    exposition = metrics(bridge)
    for reason in ("seq_jump", "epoch_changed", "undecodable"):
        assert f'metrics_bridge_upstream_resyncs_total{{reason="{reason}"}} 1.0' in exposition
    log = bridge.log()
    assert "sent bad data (seq_jump)" in log
    assert "sent bad data (epoch_changed)" in log
    assert "sent bad data (undecodable)" in log
    assert "Traceback" not in log
