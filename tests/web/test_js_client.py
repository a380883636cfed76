"""The JS client (web/src/client.js) in node against a real collector and bridge:
the same behaviours the Python client is tested for, and the same values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bridge.client import ChannelSynced, ChannelUpdated, ClientSession
from tests.bridge.stack import bridge, collector
from tests.support.processes import ServerProcess
from tests.support.proxy import TcpProxy
from tests.support.timing import scaled
from tests.web.conftest import wait_bridge_ready
from tests.web.follower import NodeFollower

pytestmark = pytest.mark.node

PROTOCOL = "metrics-bridge.v1"
CHANNEL = "c1/host"


@pytest.fixture(scope="module")
def live_bridge() -> Iterator[ServerProcess]:
    """One collector (source "host", 0.1 s interval) and one bridge (0.5 s heartbeat)."""
    with collector() as c, bridge(c.addresses["grpc"]) as b:
        wait_bridge_ready(b.addresses["ws"])
        yield b


@pytest.fixture
async def proxy(live_bridge: ServerProcess) -> AsyncIterator[TcpProxy]:
    host, _, port = live_bridge.addresses["ws"].rpartition(":")
    p = await TcpProxy(host, int(port)).start()
    try:
        yield p
    finally:
        await p.close()


async def python_values(url: str, count: int) -> dict[int, dict[str, float]]:
    """Numbers by series key at each seq, as the Python client's session decodes them."""
    session = ClientSession([CHANNEL])
    seen: dict[int, dict[str, float]] = {}
    async with (
        asyncio.timeout(scaled(30)),
        connect(url, subprotocols=[PROTOCOL]) as ws,  # type: ignore[list-item]
    ):
        session.connection_opened(time.monotonic())
        while len(seen) < count:
            data = await ws.recv()
            assert isinstance(data, bytes)
            events = session.receive(data, time.monotonic())
            for frame in session.data_to_send():
                await ws.send(frame)
            for event in events:
                if isinstance(event, ChannelSynced | ChannelUpdated) and event.channel == CHANNEL:
                    view = session.views[CHANNEL]
                    assert view.position is not None
                    seen[view.position.seq] = {
                        s.key: s.number for s in view.series() if s.number is not None
                    }
    return seen


def seqs(data: list[dict[str, Any]]) -> list[int]:
    return [int(line["seq"]) for line in data]


async def test_js_client_decodes_the_same_values_as_the_python_client_at_each_seq(
    live_bridge: ServerProcess,
) -> None:
    url = live_bridge.addresses["url"]
    async with NodeFollower(url, CHANNEL) as js:
        python = await python_values(url, 25)
        await js.wait_data(25)
    by_seq = {int(line["seq"]): line["numbers"] for line in js.data}
    common = sorted(set(by_seq) & set(python))
    assert len(common) >= 10, f"too few common seqs: js {sorted(by_seq)}, py {sorted(python)}"
    for seq in common:
        assert by_seq[seq] == python[seq], f"values differ at seq {seq}"
    assert any("system_cpu_percent" in by_seq[s] for s in common)


async def test_js_client_applies_every_update_in_order_after_its_snapshot(
    live_bridge: ServerProcess,
) -> None:
    async with NodeFollower(live_bridge.addresses["url"], CHANNEL) as js:
        await js.wait_data(20)
    assert js.data[0]["kind"] == "snapshot"
    first = seqs(js.data)[0]
    assert seqs(js.data)[:20] == list(range(first, first + 20))


async def test_js_client_resumes_without_a_gap_after_the_link_is_cut(proxy: TcpProxy) -> None:
    async with NodeFollower(proxy.url, CHANNEL) as js:
        await js.wait_data(5)
        proxy.cut()
        await js.wait_event("connection", lambda d: d["state"] == "reconnecting")
        await js.wait_event("subscribed", lambda d: d["recovered"] is True)
        cut_at = len(js.data)
        await js.wait_data(cut_at + 10)
    numbers = seqs(js.data)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a seq is missing"
    assert [line["kind"] for line in js.data].count("snapshot") == 1


async def test_js_client_treats_a_silent_link_as_dead_and_reconnects(proxy: TcpProxy) -> None:
    async with NodeFollower(proxy.url, CHANNEL) as js:
        await js.wait_data(3)
        frozen_at = time.monotonic()
        proxy.freeze()
        lost = await js.wait_event("connection", lambda d: d["state"] == "reconnecting")
        silent_for = time.monotonic() - frozen_at
        assert "dead link" in lost["reason"]
        # heartbeat 0.5 s: dead after 2.5 intervals of silence (1.25 s), give or take a tick
        assert silent_for >= 1.0
        await js.wait_event("subscribed", lambda d: d["recovered"] is True)
        before = len(js.data)
        await js.wait_data(before + 5)
    numbers = seqs(js.data)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_js_client_reports_an_unknown_channel_as_an_error(
    live_bridge: ServerProcess,
) -> None:
    async with NodeFollower(live_bridge.addresses["url"], "c1/no-such-source") as js:
        error = await js.wait_event("error", lambda d: True)
        assert error["channel"] == "c1/no-such-source"
        assert error["code"] == "unknown_channel"
        assert js.data == []
