"""The Node `ws` baseline (bench/node/ws_baseline.mjs) as a real process on a real collector."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.processes import NODE_DIR, Server
from bench.run import host_source
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from tests.support.processes import REPO, running
from tests.support.timing import scaled

pytestmark = pytest.mark.node

PROTOCOL = "metrics-bridge.v1"


@pytest.fixture(scope="module")
def collector() -> Iterator[str]:
    with running("collector", ["--listen", "127.0.0.1:0", "--interval", "0.1"]) as server:
        yield server.addresses["grpc"]


@pytest.fixture(scope="module")
def host_channel(collector: str) -> str:
    return f"c1/{host_source(collector)}"


def start_ws(collector: str, host_channel: str) -> Server:
    source = host_channel.split("/", 1)[1]
    return Server.node(
        "ws_baseline.mjs",
        ["--collector", collector, "--name", "c1", "--wait-source", source],
        timeout=scaled(30),
    )


@pytest.fixture(scope="module")
def ws_url(collector: str, host_channel: str) -> Iterator[str]:
    server = start_ws(collector, host_channel)
    try:
        yield server.addresses["url"]
    finally:
        server.stop()


def subscribe(*channels: str) -> bytes:
    requests = [bridge_pb2.ChannelRequest(channel=c) for c in channels]
    message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=requests))
    return message.SerializeToString()


async def receive(ws: ClientConnection) -> bridge_pb2.ServerMessage:
    data = await ws.recv(decode=False)
    message = bridge_pb2.ServerMessage()
    message.ParseFromString(data)
    return message


async def test_a_subscriber_gets_the_snapshot_then_updates_framed_like_the_bridge(
    ws_url: str, host_channel: str
) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL], compression=None) as ws:  # type: ignore[list-item]
        await ws.send(subscribe(host_channel))
        first = await receive(ws)
        second = await receive(ws)
    assert first.channel == host_channel
    assert first.WhichOneof("body") == "snapshot"
    assert f"c1/{first.snapshot.source}" == host_channel
    assert second.channel == host_channel
    assert second.WhichOneof("body") == "update"
    assert (second.update.epoch, second.update.seq) > (first.snapshot.epoch, first.snapshot.seq)


async def test_a_resume_position_is_ignored_and_answered_with_the_snapshot(
    ws_url: str, host_channel: str
) -> None:
    request = bridge_pb2.ClientMessage(
        subscribe=bridge_pb2.Subscribe(
            channels=[
                bridge_pb2.ChannelRequest(
                    channel=host_channel, resume=metrics_pb2.Position(epoch=1, seq=2)
                )
            ]
        )
    )
    async with connect(ws_url, subprotocols=[PROTOCOL], compression=None) as ws:  # type: ignore[list-item]
        await ws.send(request.SerializeToString())
        first = await receive(ws)
    assert first.WhichOneof("body") == "snapshot"


async def test_subprotocol_and_permessage_deflate_are_negotiated(
    ws_url: str, host_channel: str
) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await ws.send(subscribe(host_channel))
        first = await receive(ws)
        assert ws.subprotocol == PROTOCOL
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
    assert first.WhichOneof("body") == "snapshot"


async def test_a_first_message_that_is_not_a_subscribe_is_closed_with_1007(ws_url: str) -> None:
    ping = bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=1)).SerializeToString()
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await ws.send(ping)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1007
    assert "subscribe" in closed.value.rcvd.reason


async def test_a_text_first_message_is_closed_with_1003(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await ws.send("subscribe me")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1003


def test_sigterm_exits_0(collector: str, host_channel: str) -> None:
    server = start_ws(collector, host_channel)
    server.stop()
    assert server.proc.returncode == 0


def test_node_unit_tests_of_the_fanout_and_wire_pass() -> None:
    result = subprocess.run(
        ["node", "--test", str(NODE_DIR / "test")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr
