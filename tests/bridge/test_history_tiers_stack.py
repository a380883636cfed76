"""History on subscribe and rate tiers against a real collector and bridge.

- History: the oldest held state and every held update equal the collector's
  own states (read from its gRPC stream) at the same seqs.
- Rate tiers: merged updates give the same state, at each seq they reach, as
  every update at full rate; clients of one tier get identical bytes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from bridge.client.state import Applied, ChannelView
from metrics_bridge.v1 import bridge_pb2, collector_pb2, collector_pb2_grpc
from tests.bridge.stack import Client, bridge, collector, ready_client
from tests.support.timing import async_wait_until, scaled, wait_until

CHANNEL = "c1/host"
State = tuple[tuple[str, float | None], ...]


def state_of(view: ChannelView) -> State:
    return tuple((series.key, series.number) for series in view.series())


class CollectorStates:
    """The collector's own states of a source by seq, from its gRPC Subscribe stream."""

    def __init__(self, address: str, source: str) -> None:
        self.states: dict[int, State] = {}
        self.first = -1
        self._channel = grpc.insecure_channel(address)
        stub = collector_pb2_grpc.MetricsCollectorStub(self._channel)
        self._call = stub.Subscribe(collector_pb2.SubscribeRequest(sources=[source]))
        self._view = ChannelView(source)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._call:
                if event.HasField("snapshot"):
                    self.states.clear()
                    self._view.apply_snapshot(event.snapshot)
                    self.first = event.snapshot.seq
                elif event.HasField("update"):
                    assert self._view.apply_update(event.update) is Applied.APPLIED
                position = self._view.position
                assert position is not None
                self.states[position.seq] = state_of(self._view)
        except grpc.RpcError:
            pass  # cancelled at the end of the test

    @property
    def seq(self) -> int:
        return max(self.states, default=-1)

    def close(self) -> None:
        self._call.cancel()
        self._channel.close()


@contextmanager
def collector_states(address: str) -> Iterator[CollectorStates]:
    states = CollectorStates(address, "host")
    try:
        yield states
    finally:
        states.close()


async def subscribe(client: Client, *, history: bool = False, interval: int = 0) -> None:
    item = bridge_pb2.ChannelRequest(channel=CHANNEL, history=history, min_interval_ms=interval)
    await client.send(bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[item])))


class Follower:
    """Reads a subscribed channel: its view, its state at every seq, the raw update payloads."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.view = ChannelView(CHANNEL)
        self.states: dict[int, State] = {}
        self.updates: list[tuple[int, int, bytes]] = []  # (first_seq, seq, payload)
        self.acks: list[bridge_pb2.Subscribed] = []
        self.snapshot_seqs: list[int] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            data = await self.client.ws.recv()
            assert isinstance(data, bytes)
            message = bridge_pb2.ServerMessage.FromString(data)
            body = message.WhichOneof("body")
            if body == "subscribed":
                self.acks.append(message.subscribed)
                continue
            if body == "snapshot":
                self.view.apply_snapshot(message.snapshot)
                self.snapshot_seqs.append(message.snapshot.seq)
            elif body == "update":
                applied = self.view.apply_update(message.update, message.first_seq)
                assert applied is Applied.APPLIED, (message.first_seq, message.update.seq)
                self.updates.append((message.first_seq, message.update.seq, data))
            else:
                continue
            position = self.view.position
            assert position is not None
            self.states[position.seq] = state_of(self.view)

    @property
    def seq(self) -> int:
        return max(self.states, default=-1)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()


@pytest.mark.asyncio
async def test_history_equals_the_collectors_states_at_the_same_seqs() -> None:
    with (
        collector("--interval", "0.05") as col,
        collector_states(col.addresses["grpc"]) as truth,
        bridge(col.addresses["grpc"], "--history-window", "40", "--resume-window", "8") as br,
    ):
        await asyncio.to_thread(
            wait_until, lambda: truth.seq >= truth.first + 70, 30, "70 collector updates"
        )
        client = await ready_client(br.addresses["url"], CHANNEL)
        await subscribe(client, history=True)
        follower = Follower(client)
        try:
            await async_wait_until(lambda: len(follower.states) >= 41, 15, "the history")
            (ack,) = follower.acks
            assert ack.history and not ack.recovered
            start = follower.snapshot_seqs[0]
            assert start > truth.first, "the ring's start moved: updates were folded into it"
            held = [seq for seq in sorted(follower.states) if seq <= ack.position.seq]
            assert held == list(range(start, ack.position.seq + 1))
            assert len(held) == 41  # the snapshot at the start and 40 updates
            for seq in held:
                assert follower.states[seq] == truth.states[seq], seq
        finally:
            await follower.close()


@pytest.mark.asyncio
async def test_merged_updates_match_full_rate_and_one_tier_gets_identical_bytes() -> None:
    with (
        collector("--interval", "0.05") as col,
        bridge(col.addresses["grpc"], "--rate-tiers", "400,2000", "--compression", "none") as br,
    ):
        url = br.addresses["url"]
        clients = [await ready_client(url, CHANNEL) for _ in range(4)]
        full, *tier = [Follower(c) for c in clients]
        await subscribe(full.client)
        for follower in tier:
            await subscribe(follower.client, interval=300)
        try:
            await async_wait_until(lambda: len(full.updates) >= 60, 20, "60 full-rate updates")
            # Positions reached by merged updates: each is a state full rate also reached.
            await async_wait_until(
                lambda: all(f.seq <= full.seq for f in tier), scaled(5), "full rate to catch up"
            )
            for follower in tier:
                assert [a.interval_ms for a in follower.acks] == [400]
                merged = [u for u in follower.updates if u[0]]
                assert len(merged) >= 5
                assert len(follower.updates) < len(full.updates) / 3
                for first_seq, seq, _ in follower.updates:
                    assert follower.states[seq] == full.states[seq], (first_seq, seq)
            # Ticks after all three met at one position: identical bytes.
            by_range = [{(f, s): data for f, s, data in follower.updates} for follower in tier]
            common = set(by_range[0]) & set(by_range[1]) & set(by_range[2])
            assert len(common) >= 5
            for key in common:
                assert by_range[0][key] == by_range[1][key] == by_range[2][key]
        finally:
            for follower in (full, *tier):
                await follower.close()
