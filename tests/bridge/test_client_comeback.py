"""A pushed source that expires and is pushed again, against a real collector and bridge.

The collector removes a source idle for `--source-ttl`; the bridge tells its
subscribers Status REMOVED and drops the channel from the catalog. A later push
starts the source over with a new epoch and the catalog lists it again. Every
client must then subscribe again by itself (docs/protocol.md, "Client rules";
conformance/removed_then_listed_again.json) and show the new value: the Python
client, `metrics-bridge tail`, and the JS client.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from bridge.client import BridgeClient, ClientEvent, ReconnectPolicy, StatusChanged
from metrics_bridge.v1 import bridge_pb2
from tests.support.processes import REPO
from tests.support.stack import COLLECTOR, Stack, gauge, push, running_stack
from tests.support.timing import async_wait_until, scaled
from tests.web.follower import NodeFollower

TTL = 1.0
SOURCE = "comeback"
CHANNEL = f"{COLLECTOR}/{SOURCE}"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    collector_args = ("--interval", "0.1", "--source-ttl", str(TTL))
    with running_stack(collector_args, bridge_extra=["--heartbeat", "0.2"]) as running:
        yield running


async def push_value(stack: Stack, value: float) -> None:
    await asyncio.to_thread(push, stack.grpc_address, SOURCE, [[gauge("depth", value)]])


class KeepAlive:
    """Pushes `value` well within the ttl from `start()` (whose first push is done when
    it returns, so the channel exists) until `stop()`; then the source may expire."""

    def __init__(self, stack: Stack, value: float) -> None:
        self.stack = stack
        self.value = value
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await push_value(self.stack, self.value)
        self._task = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(TTL / 5)
            await push_value(self.stack, self.value)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Watcher:
    """A Python BridgeClient on CHANNEL whose events are recorded as they come."""

    def __init__(self, client: BridgeClient) -> None:
        self.client = client
        self.events: list[ClientEvent] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.client.events():
            self.events.append(event)

    def value(self) -> float | None:
        view = self.client.views.get(CHANNEL)
        return None if view is None else view.value("depth")

    def removed(self) -> bool:
        return any(
            isinstance(e, StatusChanged) and e.state == bridge_pb2.UPSTREAM_STATE_REMOVED
            for e in self.events
        )

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def watching(stack: Stack) -> AsyncIterator[Watcher]:
    policy = ReconnectPolicy(base=0.05, cap=0.4)
    async with BridgeClient(stack.url, [CHANNEL], policy=policy, rng=random.Random(3)) as client:
        watcher = Watcher(client)
        try:
            yield watcher
        finally:
            await watcher.close()


class Tail:
    """`python -m bridge tail URL --channel CHANNEL` as a subprocess, its lines as they come."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.values: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Tail:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "tail",
            self.url,
            "--channel",
            CHANNEL,
            "--timeout",
            str(scaled(120)),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self._proc.stdout is not None
        self._reader = asyncio.create_task(self._read(self._proc.stdout))
        return self

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            channel, _seq, key, value = line.decode().split()
            if (channel, key) == (CHANNEL, "depth"):
                self.values.append(value)

    async def __aexit__(self, *exc: object) -> None:
        assert self._proc is not None and self._reader is not None
        if self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def test_every_client_follows_a_source_that_expires_and_is_pushed_again(
    stack: Stack,
) -> None:
    keeper = KeepAlive(stack, 1.0)
    await keeper.start()  # the channel exists before any client asks for it
    try:
        async with (
            watching(stack) as python,
            Tail(stack.url) as tail,
            NodeFollower(stack.url, CHANNEL) as js,
        ):
            await async_wait_until(lambda: python.value() == 1.0, 30, "the Python client at 1")
            await async_wait_until(lambda: "1" in tail.values, 30, "tail to show 1")
            await js.wait_data(1)
            assert js.data[-1]["numbers"] == {"depth": 1.0}
            first_epoch = js.data[-1]["epoch"]

            await keeper.stop()  # nothing is pushed any more: the source expires after TTL
            await async_wait_until(python.removed, 30, "Status REMOVED")
            await js.wait_event("upstream", lambda d: d["state"] == "removed")

            await push_value(stack, 2.0)
            await async_wait_until(lambda: python.value() == 2.0, 30, "the Python client at 2")
            await async_wait_until(lambda: "2" in tail.values, 30, "tail to show 2")
            await async_wait_until(
                lambda: js.data[-1]["numbers"] == {"depth": 2.0}, 30, "the JS client to show 2"
            )
            assert js.data[-1]["epoch"] != first_epoch, "the comeback starts a new epoch"
    finally:
        await keeper.stop()
