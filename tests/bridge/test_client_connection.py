"""BridgeClient against a real collector and bridge, with failures made by a TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import pytest

from bridge.client import (
    BridgeClient,
    ChannelSynced,
    ChannelView,
    ClientEvent,
    Connected,
    Disconnected,
    ReconnectPolicy,
)
from bridge.client.connection import RECENT_DELAYS
from tests.support.processes import ServerProcess
from tests.support.proxy import TcpProxy
from tests.support.stack import COLLECTOR, Stack, bridge_args, gauge, get_snapshot, push
from tests.support.stack import running_stack as stack_of
from tests.support.timing import async_wait_until

T = TypeVar("T")
FAST = ReconnectPolicy(base=0.05, cap=0.4)


class Recorder:
    """Reads a client's events in the background so tests can wait on them."""

    def __init__(self, client: BridgeClient) -> None:
        self.events: list[ClientEvent] = []
        self._task = asyncio.create_task(self._read(client))

    async def _read(self, client: BridgeClient) -> None:
        async for event in client.events():
            self.events.append(event)

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


@contextlib.asynccontextmanager
async def following(
    url: str, channel: str, **options: object
) -> AsyncIterator[tuple[BridgeClient, Recorder]]:
    client = BridgeClient(url, [channel], policy=FAST, rng=random.Random(7), **options)  # type: ignore[arg-type]
    async with client:
        recorder = Recorder(client)
        try:
            yield client, recorder
        finally:
            await recorder.close()


def values_of(view: ChannelView) -> dict[str, float | None]:
    return {series.key: series.number for series in view.series()}


async def push_values(address: str, source: str, start: int, count: int) -> None:
    batches = [
        [gauge("requests", float(i), route=f"/r{i % 3}"), gauge("step", i)]
        for i in range(start, start + count)
    ]
    await asyncio.to_thread(push, address, source, batches)


async def assert_matches_collector(client: BridgeClient, stack_grpc: str, source: str) -> None:
    """The client's view equals the collector's snapshot once both are at the same seq."""
    snapshot = await asyncio.to_thread(get_snapshot, stack_grpc, source)
    channel = f"{COLLECTOR}/{source}"

    def caught_up() -> bool:
        view = client.views.get(channel)
        return view is not None and view.position is not None and view.position.seq == snapshot.seq

    await async_wait_until(caught_up, 20, f"client at seq {snapshot.seq}")
    expected = ChannelView(channel)
    expected.apply_snapshot(snapshot)
    view = client.views[channel]
    assert view.position == expected.position
    assert values_of(view) == values_of(expected)


@pytest.fixture
def stack() -> Iterator[Stack]:
    # --history-window 0: the ring holds exactly --resume-window updates.
    extra = ["--heartbeat", "0.2", "--resume-window", "8", "--history-window", "0"]
    with stack_of(bridge_extra=extra) as running:
        yield running


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[TcpProxy]:
    host, port = stack.bridge.addresses["ws"].rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    yield proxy
    await proxy.close()


async def test_state_equals_the_collectors_snapshot_at_the_same_seq(stack: Stack) -> None:
    await push_values(stack.grpc_address, "svc", 0, 3)
    async with following(stack.url, f"{COLLECTOR}/svc") as (client, _):
        await push_values(stack.grpc_address, "svc", 3, 20)
        await assert_matches_collector(client, stack.grpc_address, "svc")


async def test_dropped_connection_resumes_with_recovered_updates(
    stack: Stack, proxy: TcpProxy
) -> None:
    await push_values(stack.grpc_address, "svc", 0, 3)
    async with following(proxy.url, f"{COLLECTOR}/svc") as (client, events):
        await assert_matches_collector(client, stack.grpc_address, "svc")
        proxy.refusing = True
        proxy.cut()
        await async_wait_until(lambda: bool(events.of(Disconnected)), 20, "the client to notice")
        await push_values(stack.grpc_address, "svc", 3, 4)
        proxy.refusing = False
        await async_wait_until(lambda: len(events.of(ChannelSynced)) >= 2, 20, "a resync")
        assert events.of(ChannelSynced)[-1].recovered
        await assert_matches_collector(client, stack.grpc_address, "svc")


async def test_state_is_rebuilt_from_a_snapshot_when_the_ring_moved_on(
    stack: Stack, proxy: TcpProxy
) -> None:
    await push_values(stack.grpc_address, "svc", 0, 3)
    async with following(proxy.url, f"{COLLECTOR}/svc") as (client, events):
        await assert_matches_collector(client, stack.grpc_address, "svc")
        proxy.refusing = True
        proxy.cut()
        await push_values(stack.grpc_address, "svc", 3, 30)  # more than --resume-window 8
        proxy.refusing = False
        await async_wait_until(lambda: len(events.of(ChannelSynced)) >= 2, 20, "a resync")
        assert not events.of(ChannelSynced)[-1].recovered
        await assert_matches_collector(client, stack.grpc_address, "svc")


async def test_silent_connection_is_detected_by_the_heartbeat_watchdog(
    stack: Stack, proxy: TcpProxy
) -> None:
    async with following(proxy.url, f"{COLLECTOR}/svc", miss_factor=3) as (client, events):
        await async_wait_until(lambda: bool(events.of(Connected)), 20, "a connection")
        proxy.freeze()
        await async_wait_until(lambda: bool(events.of(Disconnected)), 20, "the watchdog")
        assert "heartbeat" in events.of(Disconnected)[0].reason
        assert client.stats.dead_links == 1
        await async_wait_until(lambda: len(events.of(Connected)) >= 2, 20, "a reconnect")


async def test_reconnects_to_a_restarted_bridge_with_backoff_and_jitter(stack: Stack) -> None:
    await push_values(stack.grpc_address, "svc", 0, 3)
    port = stack.bridge.addresses["ws"].rsplit(":", 1)[1]
    args = bridge_args(stack.grpc_address, ["--heartbeat", "0.2"])
    args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
    async with following(stack.url, f"{COLLECTOR}/svc") as (client, events):
        await assert_matches_collector(client, stack.grpc_address, "svc")
        await asyncio.to_thread(stack.bridge.stop)
        await async_wait_until(lambda: len(events.of(Disconnected)) >= 4, 20, "retries")
        restarted = ServerProcess("bridge", args)
        await asyncio.to_thread(restarted.start)
        try:
            await async_wait_until(lambda: len(events.of(Connected)) >= 2, 20, "a reconnect")
            await push_values(stack.grpc_address, "svc", 3, 5)
            await assert_matches_collector(client, stack.grpc_address, "svc")
        finally:
            await asyncio.to_thread(restarted.cleanup)
    first = events.of(Disconnected)[0]
    assert first.code == 1001, "the bridge said it was going away"
    delays = [e.retry_in for e in events.of(Disconnected)]
    assert all(d is not None for d in delays)
    ceilings = [FAST.ceiling(attempt) for attempt in range(len(delays))]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))  # type: ignore[operator]
    assert len(set(delays)) == len(delays), "full jitter: no two delays alike"


async def test_stats_keep_only_the_latest_backoff_delays() -> None:
    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    # Nothing listens on port 1: every attempt fails at once and is retried.
    client = BridgeClient("ws://127.0.0.1:1/", policy=FAST, rng=random.Random(1), sleep=no_wait)
    async with client:
        await async_wait_until(
            lambda: client.stats.disconnects > RECENT_DELAYS + 5, 20, "many retries"
        )
    assert len(client.stats.delays) == RECENT_DELAYS
