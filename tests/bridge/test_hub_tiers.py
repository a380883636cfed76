"""Hub: history on subscribe and rate tiers (merged updates), with plain sinks and a fake clock."""

from __future__ import annotations

from dataclasses import replace

from bridge.frame import control_frame
from bridge.hub import Hub
from bridge.session import Timers
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from tests.bridge.events import snapshot_values
from tests.bridge.test_hub import DEFAULTS, STALE, BufferSink, bodies, connected, make_hub
from tests.bridge.test_hub import push_updates as push


def tiered_hub(**kwargs: object) -> Hub:
    limits = replace(
        DEFAULTS.limits(), resume_window=8, history_window=8, rate_tiers_ms=(1000, 5000)
    )
    options: dict[str, object] = {
        "timers": Timers(heartbeat_interval=100, ping_interval=100, ping_timeout=100)
    }
    options.update(kwargs)
    return make_hub(limits=limits, **options)


def pad(sink: BufferSink, size: int) -> None:
    """Fill the sink's buffer with an unsent frame of about `size` bytes."""
    message = bridge_pb2.ServerMessage(channel="p" * (size - 4))
    sink.pending.append(control_frame(message).wire)


def ask(
    hub: Hub,
    client: object,
    *,
    interval: int = 0,
    history: bool = False,
    resume: tuple[int, int] | None = None,
    now: float = 0,
) -> None:
    item = bridge_pb2.ChannelRequest(channel="col/svc", history=history, min_interval_ms=interval)
    if resume is not None:
        item.resume.CopyFrom(metrics_pb2.Position(epoch=resume[0], seq=resume[1]))
    message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[item]))
    hub.receive(client, message.SerializeToString(), now)  # type: ignore[arg-type]


def test_hello_announces_history_and_rate_tiers_and_the_catalog_says_it_is_approximate() -> None:
    hub = tiered_hub()
    sink = BufferSink()
    hub.connect(sink, 0)
    hello, catalog = sink.drain()
    limits = hello.hello.limits
    assert (limits.history_window, list(limits.rate_tiers_ms)) == (8, [1000, 5000])
    assert catalog.catalog.approximate  # positions and counts as of the catalog's build


def test_history_on_subscribe_is_the_oldest_held_state_then_every_held_update() -> None:
    hub = tiered_hub()
    push(hub, range(1, 12))
    client, sink = connected(hub)
    ask(hub, client, history=True)
    ack, start, *updates = sink.drain()
    assert ack.subscribed.history and not ack.subscribed.recovered
    assert ack.subscribed.position.seq == 11
    assert (start.snapshot.seq, snapshot_values(start)) == (3, {1: 3.0})
    assert [u.update.seq for u in updates] == list(range(4, 12))


def test_history_that_does_not_fit_the_clients_buffer_is_the_latest_snapshot() -> None:
    hub = tiered_hub()
    push(hub, range(1, 12))
    client, sink = connected(hub)
    pad(sink, 1900)  # 2000-byte buffer, nearly full
    ask(hub, client, history=True)
    _, ack, snapshot = sink.drain()
    assert not ack.subscribed.history and snapshot.snapshot.seq == 11


def test_history_at_a_rate_tier_is_every_held_update_then_merged_ticks() -> None:
    hub = tiered_hub()
    push(hub, range(1, 6))
    client, sink = connected(hub)
    ask(hub, client, history=True, interval=5000)
    ack, start, *held = sink.drain()
    assert (ack.subscribed.history, ack.subscribed.interval_ms) == (True, 5000)
    assert [start.snapshot.seq, *(u.update.seq for u in held)] == [0, 1, 2, 3, 4, 5]
    push(hub, range(6, 9), now=1)
    hub.tick(1.0)
    assert sink.drain() == []
    hub.tick(5.0)
    (merged,) = sink.drain()
    assert (merged.first_seq, merged.update.seq) == (6, 8)


def test_a_tier_gets_one_merged_update_per_tick_and_its_clients_get_the_same_bytes() -> None:
    hub = tiered_hub()
    full, full_sink = connected(hub)
    ask(hub, full)
    sinks = []
    for _ in range(3):
        client, sink = connected(hub)
        ask(hub, client, interval=700)
        ack, _snapshot = sink.drain()
        assert ack.subscribed.interval_ms == 1000
        sinks.append(sink)
    full_sink.drain()
    push(hub, range(1, 5), now=0.2)
    hub.tick(0.5)
    assert [s.drain() for s in sinks] == [[], [], []]
    hub.tick(1.0)
    wires = [s.pending[-1] for s in sinks]
    merged = sinks[0].drain()
    assert len(merged) == 1 and wires[0] == wires[1] == wires[2]
    assert (merged[0].first_seq, merged[0].update.seq) == (1, 4)
    assert [m.update.seq for m in full_sink.drain()] == [1, 2, 3, 4]
    hub.tick(2.0)
    assert sinks[1].drain()[-1].update.seq == 4 and sinks[1].drain() == []


def test_a_lagging_tier_client_gets_a_larger_merge_later_not_a_gap() -> None:
    hub = tiered_hub()
    client, sink = connected(hub)
    ask(hub, client, interval=1000)
    sink.drain()
    push(hub, range(1, 3))
    pad(sink, 1990)  # this tick's merge does not fit: skipped
    hub.tick(1.0)
    assert len(sink.pending) == 1
    sink.pending = []
    push(hub, range(3, 5))
    hub.tick(1.1)  # the owed channel is resynced with a snapshot once drained
    hub.tick(2.0)
    messages = sink.drain()
    assert [m.snapshot.seq for m in messages if m.HasField("snapshot")] == [4]
    push(hub, range(5, 7))
    hub.tick(3.0)
    (merged,) = sink.drain()
    assert (merged.first_seq, merged.update.seq) == (5, 6)


def test_changing_the_rate_by_resubscribing_with_resume_costs_no_snapshot() -> None:
    hub = tiered_hub()
    client, sink = connected(hub)
    ask(hub, client)
    push(hub, range(1, 4))
    sink.drain()
    ask(hub, client, interval=5000, resume=(7, 3), now=0.1)
    push(hub, range(4, 6), now=0.2)
    hub.tick(5.0)
    ack, merged = sink.drain()
    assert ack.subscribed.recovered and ack.subscribed.interval_ms == 5000
    assert (merged.first_seq, merged.update.seq) == (4, 5)
    ask(hub, client, resume=(7, 5), now=5.1)
    push(hub, range(6, 7), now=5.2)
    assert [m.WhichOneof("body") for m in sink.drain()] == ["subscribed", "update"]


def test_a_tier_heartbeat_claims_where_the_last_tick_took_its_clients() -> None:
    hub = tiered_hub(timers=Timers(heartbeat_interval=1, ping_interval=100, ping_timeout=100))
    slow, slow_sink = connected(hub)
    full, full_sink = connected(hub)
    ask(hub, slow, interval=5000)
    ask(hub, full)
    push(hub, range(1, 3), now=0.1)
    hub.tick(1.0)  # heartbeat due (1 s); the 5 s tier has not ticked
    (slow_beat,) = [m for m in slow_sink.drain() if m.HasField("heartbeat")]
    (full_beat,) = [m for m in full_sink.drain() if m.HasField("heartbeat")]
    assert slow_beat.heartbeat.positions[0].position.seq == 0
    assert full_beat.heartbeat.positions[0].position.seq == 2


def test_status_and_removal_reach_tier_clients() -> None:
    hub = tiered_hub()
    client, sink = connected(hub)
    ask(hub, client, interval=1000)
    sink.drain()
    hub.set_collector_state("col", STALE, "gone", 0.5)
    assert bodies(sink.drain()) == ["status"]
    hub.remove_channel("col/svc", 0.6)
    assert sink.drain()[0].status.state == bridge_pb2.UPSTREAM_STATE_REMOVED
    assert hub.tiers.members("col/svc") == []
    hub.tick(1.0)
    assert bodies(sink.drain()) == ["catalog"]


def test_a_new_epoch_reaches_a_tier_client_as_a_snapshot_at_its_tick() -> None:
    from tests.bridge.events import snapshot_event

    hub = tiered_hub()
    client, sink = connected(hub)
    ask(hub, client, interval=1000)
    sink.drain()
    hub.apply_event("col", snapshot_event("svc", 8, 1, {1: 5.0}), 0.2)
    assert sink.drain() == []
    hub.tick(1.0)
    (snapshot,) = [m for m in sink.drain() if m.HasField("snapshot")]
    assert (snapshot.snapshot.epoch, snapshot.snapshot.seq) == (8, 1)


def test_unsubscribing_or_disconnecting_leaves_the_tier() -> None:
    hub = tiered_hub()
    one, _ = connected(hub)
    two, _ = connected(hub)
    ask(hub, one, interval=1000)
    ask(hub, two, interval=1000)
    message = bridge_pb2.ClientMessage(unsubscribe=bridge_pb2.Unsubscribe(channels=["col/svc"]))
    hub.receive(one, message.SerializeToString(), 0)  # type: ignore[arg-type]
    hub.disconnect(two)  # type: ignore[arg-type]
    assert hub.tiers.members("col/svc") == []
