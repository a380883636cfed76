"""The picows baseline (bench/picows_baseline.py) as a real process on a real collector:
the bridge's frames, the subprotocol echoed, compression declined."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from bench.processes import Server
from bench.run import host_source
from metrics_bridge.v1 import bridge_pb2
from tests.support.processes import running
from tests.support.timing import scaled

PROTOCOL = "metrics-bridge.v1"


@pytest.fixture(scope="module")
def picows_url() -> Iterator[tuple[str, str]]:
    with running("collector", ["--listen", "127.0.0.1:0", "--interval", "0.1"]) as collector:
        address = collector.addresses["grpc"]
        source = host_source(address)
        server = Server.module(
            "bench.picows_baseline",
            ["--collector", address, "--name", "c1", "--wait-source", source],
            timeout=scaled(30),
        )
        try:
            yield server.addresses["url"], f"c1/{source}"
        finally:
            server.stop()


async def test_a_subscriber_gets_the_snapshot_then_updates_framed_like_the_bridge(
    picows_url: tuple[str, str],
) -> None:
    url, channel = picows_url
    subscribe = bridge_pb2.ClientMessage(
        subscribe=bridge_pb2.Subscribe(channels=[bridge_pb2.ChannelRequest(channel=channel)])
    )
    async with connect(url, subprotocols=[PROTOCOL], compression="deflate") as ws:  # type: ignore[list-item]
        assert ws.subprotocol == PROTOCOL
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send(subscribe.SerializeToString())
        first = bridge_pb2.ServerMessage.FromString(await ws.recv(decode=False))
        second = bridge_pb2.ServerMessage.FromString(await ws.recv(decode=False))
    assert (first.channel, first.WhichOneof("body")) == (channel, "snapshot")
    assert (second.channel, second.WhichOneof("body")) == (channel, "update")
    assert second.update.seq > first.snapshot.seq
