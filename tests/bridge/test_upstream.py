"""The bridge following collectors that die, restart, and bridges that restart."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from metrics_bridge.v1 import bridge_pb2
from tests.bridge.stack import Client, Pusher, bridge, collector, ready_client
from tests.support.processes import ServerProcess, running

STALE = bridge_pb2.UPSTREAM_STATE_STALE
LIVE = bridge_pb2.UPSTREAM_STATE_LIVE


async def test_channel_is_named_after_the_collector_reported_name_by_default() -> None:
    with collector("--host-source", "box7") as col, bridge(col.addresses["grpc"], name="") as br:
        client = await ready_client(br.addresses["url"], "box7/box7")
        await client.subscribe("box7/box7")
        snapshot = await client.next("snapshot")
        assert snapshot.snapshot.source == "box7"
        assert snapshot.snapshot.kind == 1  # SOURCE_KIND_HOST
        await client.close()


async def test_collector_killed_makes_channels_stale_and_clients_stay_connected() -> None:
    with collector() as col, bridge(col.addresses["grpc"]) as br:
        client = await ready_client(br.addresses["url"], "c1/host")
        await client.subscribe("c1/host")
        await client.next("snapshot")
        col.kill()
        status = await client.next("status")
        assert status.channel == "c1/host"
        assert status.status.state == STALE
        assert "unreachable" in status.status.detail
        await client.send(bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=77)))
        assert (await client.next("pong")).pong.nonce == 77
        heartbeat = await client.next("heartbeat")
        assert heartbeat.heartbeat.positions[0].channel == "c1/host"
        await client.close()


async def test_restarted_collector_reaches_clients_as_live_status_and_a_fresh_snapshot() -> None:
    with collector() as col:
        address = col.addresses["grpc"]
        with bridge(address) as br:
            client = await ready_client(br.addresses["url"], "c1/host")
            await client.subscribe("c1/host")
            before = (await client.next("snapshot")).snapshot
            col.kill()
            assert (await client.next("status")).status.state == STALE
            with running(
                "collector",
                ["--listen", address, "--interval", "0.1", "--host-source", "host"],
            ):
                live = await client.next("status", within=30)
                assert live.status.state == LIVE
                fresh = await client.next("snapshot", "update", within=10)
                assert fresh.HasField("snapshot")
                assert fresh.snapshot.epoch != before.epoch
                following = await client.next("update", "snapshot")
                assert following.HasField("update")
                assert following.update.epoch == fresh.snapshot.epoch
                assert following.update.seq == fresh.snapshot.seq + 1
            await client.close()


async def test_bridge_sigterm_closes_clients_with_1001_and_a_new_bridge_carries_on() -> None:
    with collector() as col:
        pusher = Pusher(col.addresses["grpc"])
        pusher.push(1.0)
        first = ServerProcess("bridge", bridge_args(col.addresses["grpc"])).start()
        try:
            client = await ready_client(first.addresses["url"], "c1/svc")
            await client.subscribe("c1/svc")
            snapshot = (await client.next("snapshot")).snapshot
            first.signal(signal.SIGTERM)
            try:
                while True:
                    await client.recv()
            except Exception:
                pass
            assert client.ws.close_code == 1001
            assert first.wait() == 0
        finally:
            first.cleanup()
        with bridge(col.addresses["grpc"]) as second:
            again = await ready_client(second.addresses["url"], "c1/svc")
            await again.subscribe("c1/svc")
            resumed = await again.next("snapshot")
            assert resumed.snapshot.epoch == snapshot.epoch
            assert resumed.snapshot.seq >= snapshot.seq
            pushed = pusher.push(2.0)
            update = await again.next("update")
            assert update.update.seq == pushed.seq == resumed.snapshot.seq + 1
            await again.close()
        pusher.close()


def bridge_args(address: str) -> list[str]:
    return ["--listen", "127.0.0.1:0", "--collector", f"c1={address}", "--heartbeat", "0.5"]


@contextmanager
def two_collectors(
    one_name: str, two_name: str
) -> Iterator[tuple[ServerProcess, ServerProcess, ServerProcess]]:
    """Two collectors with these host sources, and a bridge following both by address."""
    with (
        collector("--host-source", one_name) as one,
        collector("--host-source", two_name) as two,
        running(
            "bridge",
            [
                "--listen",
                "127.0.0.1:0",
                "--collector",
                one.addresses["grpc"],
                "--collector",
                two.addresses["grpc"],
            ],
        ) as br,
    ):
        yield one, two, br


async def catalog_until(client: Client, done: Callable[[set[str]], bool]) -> set[str]:
    """The channels of the first catalog (Hello's, or a later one) that satisfies `done`."""
    catalog = await client.greeted()
    seen = {c.channel for c in catalog.channels}
    while not done(seen):
        message = await client.next("catalog", within=15)
        seen = {c.channel for c in message.catalog.channels}
    return seen


async def test_bridge_follows_several_collectors() -> None:
    with two_collectors("a", "b") as (_, _, br):
        client = await Client.open(br.addresses["url"])
        await catalog_until(client, lambda seen: {"a/a", "b/b"} <= seen)
        await client.close()


async def test_the_later_of_two_collectors_reporting_one_name_is_named_by_its_address() -> None:
    with two_collectors("box7", "box7") as (one, two, br):
        # Which collector answers ListSources first is up to the scheduler.
        expected = [{"box7/box7", f"box7@{later.addresses['grpc']}/box7"} for later in (one, two)]
        client = await Client.open(br.addresses["url"])
        seen = await catalog_until(client, lambda seen: seen in expected)
        [renamed] = seen - {"box7/box7"}
        await client.subscribe(renamed)
        snapshot = await client.next("snapshot")
        assert snapshot.snapshot.source == "box7"
        await client.close()
        collector_name = renamed.removesuffix("/box7")
        assert f"reports the name 'box7' already in use; naming it '{collector_name}'" in br.log()
