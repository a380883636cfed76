"""The bridge process over real WebSockets, following a real collector on loopback."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bridge.server import LISTEN_BACKLOG
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from tests.bridge.stack import Client, Pusher, bridge, collector, covered_seqs, ready_client
from tests.support.processes import ServerProcess, running
from tests.support.timing import scaled

CHANNEL = "c1/svc"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[ServerProcess, ServerProcess, Pusher]]:
    with collector() as col:
        pusher = Pusher(col.addresses["grpc"])
        pusher.push(0.0)
        with bridge(
            col.addresses["grpc"],
            *("--resume-window", "5", "--history-window", "0"),
            *("--max-message-bytes", "1024"),
        ) as br:
            yield col, br, pusher
        pusher.close()


@pytest.fixture
def url(stack: tuple[ServerProcess, ServerProcess, Pusher]) -> str:
    return stack[1].addresses["url"]


@pytest.fixture
def pusher(stack: tuple[ServerProcess, ServerProcess, Pusher]) -> Pusher:
    return stack[2]


async def closed_with(client: Client) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        while True:
            await client.recv()
    return client.ws.close_code, client.ws.close_reason


async def test_ready_file_names_the_websocket_url(url: str) -> None:
    assert url.startswith("ws://127.0.0.1:") and url.endswith("/")


async def test_first_messages_are_hello_and_a_catalog_of_channels(url: str) -> None:
    client = await Client.open(url)
    hello = await client.recv()
    assert hello.hello.protocol == "metrics-bridge.v1"
    assert hello.hello.heartbeat_interval_ms == 500
    assert hello.hello.limits.resume_window == 5
    assert hello.hello.session_id
    catalog = await client.recv()
    assert catalog.HasField("catalog")
    assert client.ws.subprotocol == "metrics-bridge.v1"
    await client.close()


async def test_first_message_after_subscribe_is_a_snapshot_then_updates_in_seq_order(
    url: str, pusher: Pusher
) -> None:
    client = await ready_client(url, CHANNEL)
    await client.subscribe(CHANNEL)
    ack = await client.next("subscribed", "snapshot", "update")
    assert ack.HasField("subscribed") and not ack.subscribed.recovered
    snapshot = await client.next("snapshot", "update")
    assert snapshot.HasField("snapshot") and snapshot.channel == CHANNEL
    pushed = [pusher.push(float(i)) for i in range(1, 6)]
    seqs: list[int] = []
    while len(seqs) < len(pushed):
        seqs += covered_seqs(await client.next("update"))
    assert seqs == [p.seq for p in pushed]
    assert seqs == list(range(snapshot.snapshot.seq + 1, snapshot.snapshot.seq + 6))
    await client.close()


async def test_heartbeat_arrives_within_its_interval_with_channel_positions(
    url: str, pusher: Pusher
) -> None:
    client = await ready_client(url, CHANNEL)
    await client.subscribe(CHANNEL)
    snapshot = await client.next("snapshot")
    heartbeat = await client.next("heartbeat", within=0.5 + 1.0)
    assert heartbeat.heartbeat.server_time_ms > 0
    (position,) = heartbeat.heartbeat.positions
    assert position.channel == CHANNEL
    assert position.position.epoch == snapshot.snapshot.epoch
    assert position.position.seq >= snapshot.snapshot.seq
    await client.close()


async def test_resume_after_a_dropped_connection_gets_exactly_the_missed_updates(
    url: str, pusher: Pusher
) -> None:
    client = await ready_client(url, CHANNEL)
    await client.subscribe(CHANNEL)
    snapshot = (await client.next("snapshot")).snapshot
    last = metrics_pb2.Position(epoch=snapshot.epoch, seq=snapshot.seq)
    client.ws.transport.abort()
    missed = [pusher.push(100.5 + i) for i in range(3)]  # not whole: numbers, not deltas

    again = await ready_client(url, CHANNEL)
    await again.subscribe(CHANNEL, resume=last)
    ack = await again.next("subscribed")
    assert ack.subscribed.recovered
    got = [await again.next("update", "snapshot") for _ in missed]
    assert [m.WhichOneof("body") for m in got] == ["update"] * 3
    assert [m.update.seq for m in got] == [p.seq for p in missed]
    assert [m.update.values.numbers[0] for m in got] == [100.5, 101.5, 102.5]
    await again.close()


async def test_resume_beyond_the_ring_gets_a_snapshot_flagged_not_recovered(
    url: str, pusher: Pusher
) -> None:
    client = await ready_client(url, CHANNEL)
    await client.subscribe(CHANNEL)
    snapshot = (await client.next("snapshot")).snapshot
    await client.close()
    for i in range(8):
        latest = pusher.push(200.0 + i)
    again = await ready_client(url, CHANNEL)
    await again.subscribe(CHANNEL, metrics_pb2.Position(epoch=snapshot.epoch, seq=snapshot.seq))
    ack = await again.next("subscribed")
    assert not ack.subscribed.recovered
    fresh = await again.next("snapshot", "update")
    assert fresh.HasField("snapshot")
    assert fresh.snapshot.seq == latest.seq
    assert list(fresh.snapshot.values.numbers) == [207.0]
    await again.close()


async def test_resume_with_an_old_epoch_gets_a_snapshot_flagged_not_recovered(
    url: str, pusher: Pusher
) -> None:
    position = pusher.push(300.0)
    client = await ready_client(url, CHANNEL)
    old = metrics_pb2.Position(epoch=position.epoch ^ 1, seq=position.seq)
    await client.subscribe(CHANNEL, old)
    ack = await client.next("subscribed")
    assert not ack.subscribed.recovered
    assert (await client.next("snapshot", "update")).HasField("snapshot")
    await client.close()


async def test_unknown_channel_gets_an_error_and_the_connection_stays_open(url: str) -> None:
    client = await ready_client(url, CHANNEL)
    await client.subscribe("c1/nope")
    error = await client.next("error")
    assert error.error.code == bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL
    assert error.channel == "c1/nope"
    await client.send(bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=5)))
    assert (await client.next("pong")).pong.nonce == 5
    await client.close()


async def test_malformed_message_closes_with_1007_and_others_carry_on(
    url: str, pusher: Pusher
) -> None:
    good = await ready_client(url, CHANNEL)
    await good.subscribe(CHANNEL)
    await good.next("snapshot")
    bad = await ready_client(url, CHANNEL)
    await bad.ws.send(b"\xff\xff\xff")
    code, reason = await closed_with(bad)
    assert code == 1007 and reason
    pushed = pusher.push(1.5)
    assert (await good.next("update")).update.seq == pushed.seq
    await good.close()


async def test_text_frame_closes_with_1003(url: str) -> None:
    client = await ready_client(url, CHANNEL)
    await client.ws.send("subscribe please")
    code, reason = await closed_with(client)
    assert code == 1003 and reason and "binary" in reason


async def test_oversized_message_closes_with_1009(url: str) -> None:
    client = await ready_client(url, CHANNEL)
    await client.ws.send(b"\x00" * 2048)
    code, _reason = await closed_with(client)
    assert code == 1009


async def test_client_offering_no_subprotocol_is_closed_with_1008_and_told_why(url: str) -> None:
    async with connect(url, open_timeout=scaled(10)) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), scaled(10))
        assert ws.close_code == 1008
        assert ws.close_reason is not None and "metrics-bridge.v1" in ws.close_reason


async def test_client_offering_an_unknown_subprotocol_is_refused_with_http_400(url: str) -> None:
    with pytest.raises(InvalidStatus) as caught:
        await connect(url, subprotocols=["metrics-bridge.v0"], open_timeout=scaled(10))  # type: ignore[list-item]
    assert caught.value.response.status_code == 400
    assert b"metrics-bridge.v1" in caught.value.response.body


async def test_message_flood_closes_with_1008(url: str) -> None:
    client = await ready_client(url, CHANNEL)
    ping = bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=1)).SerializeToString()
    for _ in range(200):
        try:
            await client.ws.send(ping)
        except ConnectionClosed:
            break
    code, reason = await closed_with(client)
    assert code == 1008 and reason and "per second" in reason


async def test_connection_over_max_connections_is_closed_with_1013() -> None:
    with running(
        "bridge",
        ["--listen", "127.0.0.1:0", "--collector", "c1=127.0.0.1:1", "--max-connections", "1"],
    ) as br:
        first = await Client.open(br.addresses["url"])
        await first.greeted()
        second = await Client.open(br.addresses["url"])
        code, reason = await closed_with(second)
        assert code == 1013 and reason and "capacity" in reason
        await first.send(bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=3)))
        assert (await first.next("pong")).pong.nonce == 3
        await first.close()


def test_the_listen_backlog_takes_a_reconnect_storm_not_asyncios_100(url: str) -> None:
    port = url.rsplit(":", 1)[1].split("/")[0]
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    # ss shows a listening socket's backlog as its Send-Q (the third column).
    assert int(listing[2]) == min(LISTEN_BACKLOG, 10_000), listing
