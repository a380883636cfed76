"""Hub: the hand-off's staleness bound (issue 13), with plain sinks and fake times.

Events read off the stream are folded into the channel at once, but their
frames go out only at `release_held` (the end of the drain pass): one by one
when they waited at most a hundredth of `max_staleness`, else as one frame,
merged, and marked RESYNC_REASON_STALE when one of them had waited longer than
`max_staleness`.
"""

from __future__ import annotations

from dataclasses import replace

from bridge.channel import Position
from bridge.client.state import ChannelView
from bridge.hub import ClientPolicy, Hub
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2
from tests.bridge.events import snapshot_event, update_event
from tests.bridge.test_hub import DEFAULTS, BufferSink, connected, make_hub, subscribe

STALE = metrics_pb2.RESYNC_REASON_STALE
OVERFLOW = metrics_pb2.RESYNC_REASON_OVERFLOW
CHANNEL = "col/svc"


def staleness_hub(bound: float = 1.0, **kwargs: object) -> Hub:
    options: dict[str, object] = {
        "policy": ClientPolicy(buffer_bytes=1 << 20, slow_timeout=3, max_staleness=bound),
    }
    options.update(kwargs)
    return make_hub(**options)


def follower(hub: Hub) -> tuple[BufferSink, ChannelView]:
    """A subscribed client, and its view of the channel after the subscribe's snapshot."""
    client, sink = connected(hub)
    subscribe(hub, client)
    view = ChannelView(CHANNEL)
    apply(view, sink.drain())
    return sink, view


def apply(view: ChannelView, messages: list[bridge_pb2.ServerMessage]) -> None:
    for message in messages:
        body = message.WhichOneof("body")
        if body == "snapshot":
            view.apply_snapshot(message.snapshot)
        elif body == "update":
            view.apply_update(message.update, message.first_seq)


def state(view: ChannelView) -> tuple[object, ...]:
    return (view.position, view.series())


CHANGES: list[dict[str, object]] = [
    {"values": {1: 1.0, 2: 20.0}, "added": (2,)},
    {"values": {1: 2.0}},
    {"values": {3: 30.0}, "added": (3,)},
    {"values": {1: 4.0}, "removed": (2,)},
    {"values": {3: 31.0}},
]


def push(hub: Hub, first: int, count: int, now: float, received: float) -> None:
    for seq in range(first, first + count):
        change = CHANGES[(seq - 1) % len(CHANGES)]
        event = update_event("svc", 7, seq, **change)  # type: ignore[arg-type]
        hub.apply_event("col", event, now, received)


def test_events_of_a_bridge_that_keeps_up_go_out_one_by_one_at_the_end_of_the_pass() -> None:
    hub = staleness_hub(1.0)
    sink, _ = follower(hub)
    push(hub, 1, 3, now=10.0, received=9.995)  # waited 5 ms: under a hundredth of the bound
    assert sink.pending == [], "a pass's frames wait for its end"
    hub.release_held(10.0)
    messages = sink.drain()
    assert [(m.update.seq, m.first_seq, m.resync) for m in messages] == [
        (1, 0, 0),
        (2, 0, 0),
        (3, 0, 0),
    ]
    assert hub.counters.drops == {}


def test_events_that_waited_past_a_hundredth_of_the_bound_go_out_merged_and_unmarked() -> None:
    hub = staleness_hub(1.0)
    sink, view = follower(hub)
    every = staleness_hub(0.0)
    every_sink, every_view = follower(every)
    push(hub, 1, 3, now=10.0, received=9.5)
    push(every, 1, 3, now=10.0, received=9.5)
    hub.release_held(10.0)
    messages = sink.drain()
    assert [(m.update.seq, m.first_seq, m.resync) for m in messages] == [(3, 1, 0)]
    apply(view, messages)
    apply(every_view, every_sink.drain())
    assert state(view) == state(every_view)
    assert hub.counters.drops == {("handoff", "coalesced"): 2}
    assert hub.counters.stage_resyncs == {}


def test_stale_events_are_applied_at_once_and_go_out_at_release_as_one_marked_merged_update() -> (
    None
):
    hub = staleness_hub(1.0)
    sink, view = follower(hub)
    every = staleness_hub(0.0)
    every_sink, every_view = follower(every)
    push(hub, 1, 5, now=10.0, received=8.0)
    push(every, 1, 5, now=10.0, received=8.0)

    assert sink.pending == []
    assert hub.channels[CHANNEL].position == Position(7, 5)
    hub.release_held(10.0)
    messages = sink.drain()
    assert [(m.update.seq, m.first_seq, m.resync) for m in messages] == [(5, 1, STALE)]
    apply(view, messages)
    apply(every_view, every_sink.drain())
    assert state(view) == state(every_view)
    assert view.position is not None and view.position.seq == 5
    assert hub.counters.drops == {("handoff", "stale"): 4}
    assert hub.counters.stage_resyncs == {("handoff", "stale"): 1}
    hub.release_held(10.0)
    assert sink.drain() == [], "a release publishes what was held once"


def test_when_the_ring_cannot_bridge_the_held_updates_the_release_sends_the_snapshot_marked() -> (
    None
):
    hub = staleness_hub(1.0)  # resume_window 8
    sink, view = follower(hub)
    every = staleness_hub(0.0)
    every_sink, every_view = follower(every)
    push(hub, 1, 20, now=10.0, received=8.0)
    push(every, 1, 20, now=10.0, received=8.0)
    hub.release_held(10.0)
    messages = sink.drain()
    assert [(m.WhichOneof("body"), m.snapshot.seq, m.resync) for m in messages] == [
        ("snapshot", 20, STALE)
    ]
    apply(view, messages)
    apply(every_view, every_sink.drain())
    assert state(view) == state(every_view)
    assert hub.counters.drops == {("handoff", "stale"): 20}
    assert hub.counters.stage_resyncs == {("handoff", "stale"): 1}


def test_one_held_event_goes_out_as_it_came() -> None:
    hub = staleness_hub(1.0)
    sink, _ = follower(hub)
    push(hub, 1, 1, now=10.0, received=8.0)
    assert sink.pending == []
    hub.release_held(10.0)
    assert [(m.update.seq, m.first_seq, m.resync) for m in sink.drain()] == [(1, 0, 0)]
    assert hub.counters.drops == {}
    assert hub.counters.stage_resyncs == {}


def test_a_fresh_event_after_stale_ones_of_its_channel_waits_for_the_release_too() -> None:
    hub = staleness_hub(1.0)
    sink, _ = follower(hub)
    push(hub, 1, 2, now=10.0, received=8.0)
    push(hub, 3, 1, now=10.0, received=9.9)
    assert sink.pending == [], "publishing seq 3 now would skip 1 and 2 for the clients"
    hub.release_held(10.0)
    assert [(m.update.seq, m.first_seq, m.resync) for m in sink.drain()] == [(3, 1, STALE)]
    push(hub, 4, 1, now=10.0, received=9.9)
    hub.release_held(10.0)
    assert [(m.update.seq, m.first_seq, m.resync) for m in sink.drain()] == [(4, 0, 0)]


def test_a_bound_of_zero_holds_nothing() -> None:
    hub = staleness_hub(0.0)
    sink, _ = follower(hub)
    push(hub, 1, 3, now=100.0, received=1.0)
    assert [m.update.seq for m in sink.drain()] == [1, 2, 3]
    hub.release_held(100.0)
    assert sink.drain() == []
    assert hub.counters.drops == {}


def test_events_without_a_receive_time_are_never_held() -> None:
    hub = staleness_hub(1.0)
    sink, _ = follower(hub)
    hub.apply_event("col", update_event("svc", 7, 1, {1: 1.0}), 100.0)
    assert [m.update.seq for m in sink.drain()] == [1]


def test_a_stale_snapshot_after_an_outage_goes_out_at_release_as_the_latest_state() -> None:
    hub = staleness_hub(1.0)
    sink, view = follower(hub)
    every = staleness_hub(0.0)
    every_sink, every_view = follower(every)
    for target in (hub, every):
        target.set_collector_state("col", bridge_pb2.UPSTREAM_STATE_STALE, "collector down", 5.0)
        target.apply_event("col", snapshot_event("svc", 8, 0, {1: 5.0}), 10.0, 8.0)
        target.apply_event("col", update_event("svc", 8, 1, {1: 6.0}), 10.0, 8.0)
    held = sink.drain()
    assert [m.status.state for m in held] == [
        bridge_pb2.UPSTREAM_STATE_STALE,
        bridge_pb2.UPSTREAM_STATE_LIVE,
    ], "state changes are not held"
    hub.release_held(10.0)
    messages = sink.drain()
    assert [
        (m.WhichOneof("body"), m.snapshot.epoch, m.snapshot.seq, m.resync) for m in messages
    ] == [("snapshot", 8, 1, STALE)]
    apply(view, messages)
    apply(every_view, every_sink.drain())
    assert state(view) == state(every_view)


def test_a_channel_removed_while_held_gets_nothing_more() -> None:
    hub = staleness_hub(1.0)
    sink, _ = follower(hub)
    push(hub, 1, 3, now=10.0, received=8.0)
    removed = collector_pb2.CollectorEvent(
        source_removed=collector_pb2.SourceRemoved(source="svc")
    ).SerializeToString()
    hub.apply_event("col", removed, 10.0, 8.0)
    assert [m.status.state for m in sink.drain()] == [bridge_pb2.UPSTREAM_STATE_REMOVED]
    hub.release_held(10.0)
    assert sink.drain() == []


def test_a_snapshot_the_collector_marked_counts_as_a_collector_resync() -> None:
    hub = staleness_hub(1.0)
    sink, _ = follower(hub)
    snapshot = collector_pb2.CollectorEvent.FromString(snapshot_event("svc", 7, 12, {1: 9.0}))
    snapshot.resync = OVERFLOW
    hub.apply_event("col", snapshot.SerializeToString(), 10.0, 9.9)
    hub.release_held(10.0)
    messages = sink.drain()
    assert [(m.snapshot.seq, m.resync) for m in messages] == [(12, OVERFLOW)]
    assert hub.counters.drops == {("collector", "overflow"): 12}
    assert hub.counters.stage_resyncs == {("collector", "overflow"): 1}


def test_hop_delays_and_the_delivered_age_are_measured_per_event() -> None:
    hub = staleness_hub(1.0, wall_ms=lambda: 10_000)
    follower(hub)
    update = metrics_pb2.Update(source="svc", epoch=7, seq=1, time_unix_ms=9_000)
    event = collector_pb2.CollectorEvent(update=update).SerializeToString()
    hub.apply_event("col", event, 5.0, 4.75)
    hub.release_held(5.0)
    assert hub.hops.handoff.count == 1
    assert hub.hops.handoff.sum == 0.25
    assert hub.hops.upstream.sum == 0.75  # read at 9,750 ms wall, made at 9,000
    assert hub.delivered_ages == {CHANNEL: 1.0}


def test_rate_tier_members_are_left_to_their_tick() -> None:
    limits = replace(DEFAULTS.limits(), resume_window=8, rate_tiers_ms=(1000,))
    hub = staleness_hub(1.0, limits=limits)
    client, sink = connected(hub)
    request = bridge_pb2.ChannelRequest(channel=CHANNEL, min_interval_ms=1000)
    message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[request]))
    hub.receive(client, message.SerializeToString(), 0)  # type: ignore[arg-type]
    sink.drain()
    push(hub, 1, 3, now=10.0, received=8.0)
    hub.release_held(10.0)
    assert sink.drain() == []
    hub.tick(11.0)
    updates = [m for m in sink.drain() if m.WhichOneof("body") == "update"]
    assert [(m.update.seq, m.first_seq, m.resync) for m in updates] == [(3, 1, 0)]
