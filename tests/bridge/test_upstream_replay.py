"""A bridge that starts fresh asks its collector to replay what it still holds
(SubscribeRequest.replay_updates), so clients resume from positions older
than the bridge: positions are the source's, not the bridge's."""

from __future__ import annotations

from tests.bridge.stack import Pusher, bridge, collector, ready_client

CHANNEL = "c1/svc"


async def test_a_fresh_bridge_recovers_a_position_from_before_it_started() -> None:
    with collector() as col:
        pusher = Pusher(col.addresses["grpc"])
        positions = [pusher.push(float(i)) for i in range(1, 31)]
        pusher.close()
        before = positions[9]
        with bridge(col.addresses["grpc"]) as br:
            client = await ready_client(br.addresses["url"], CHANNEL)
            await client.subscribe(CHANNEL)
            latest = (await client.next("snapshot")).snapshot
            assert (latest.epoch, latest.seq) == (before.epoch, 30)
            await client.subscribe(CHANNEL, resume=before)
            ack = (await client.next("subscribed")).subscribed
            assert ack.recovered, "a position the collector held when the bridge started"
            updates = [(await client.next("update", "snapshot")) for _ in range(20)]
            assert [m.WhichOneof("body") for m in updates] == ["update"] * 20
            assert [m.update.seq for m in updates] == list(range(11, 31))
            assert all(m.update.epoch == before.epoch for m in updates)
            await client.close()
