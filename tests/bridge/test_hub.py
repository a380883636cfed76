"""Hub: fan-out, subscribe/resume, slow clients, upstream state and timers, with plain sinks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.config import BridgeConfig
from bridge.errors import CloseCode
from bridge.frame import Frame
from bridge.hub import ClientPolicy, Hub
from bridge.session import Timers
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from tests.bridge.events import parse_wire, snapshot_event, snapshot_values, update_event

DEFAULTS = BridgeConfig()
STALE = bridge_pb2.UPSTREAM_STATE_STALE
LIVE = bridge_pb2.UPSTREAM_STATE_LIVE
REMOVED = bridge_pb2.UPSTREAM_STATE_REMOVED


class BufferSink:
    """A connection whose outbound buffer drains only when the test says so."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.received: list[bytes] = []
        self.pings: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    def buffered(self) -> int:
        return sum(len(b) for b in self.pending)

    def write(self, frame: Frame) -> int:
        assert self.closed is None
        self.pending.append(frame.wire)
        return len(frame.wire)

    def ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def drain(self) -> list[bridge_pb2.ServerMessage]:
        self.received += self.pending
        messages = [parse_wire(b) for b in self.pending]
        self.pending = []
        return messages


def make_hub(**kwargs: object) -> Hub:
    options: dict[str, object] = {
        "limits": replace(
            DEFAULTS.limits(), resume_window=8, max_subscriptions=10, history_window=0
        ),
        "timers": Timers(heartbeat_interval=1, ping_interval=5, ping_timeout=5),
        "policy": ClientPolicy(buffer_bytes=2000, slow_timeout=3),
        "max_connections": 10,
        "server_version": "test",
        "wall_ms": lambda: 1234,
        "phase": lambda: 1.0,
    }
    options.update(kwargs)
    hub = Hub(**options)  # type: ignore[arg-type]
    hub.apply_event("col", snapshot_event("svc", 7, 0, {1: 0.0}), 0)
    hub.tick(0)
    return hub


def bodies(messages: list[bridge_pb2.ServerMessage]) -> list[str | None]:
    return [m.WhichOneof("body") for m in messages]


def subscribe(
    hub: Hub,
    client: object,
    channel: str = "col/svc",
    resume: tuple[int, int] | None = None,
    now: float = 0,
) -> None:
    item = bridge_pb2.ChannelRequest(channel=channel)
    if resume is not None:
        item.resume.CopyFrom(metrics_pb2.Position(epoch=resume[0], seq=resume[1]))
    message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[item]))
    hub.receive(client, message.SerializeToString(), now)  # type: ignore[arg-type]


def push_updates(hub: Hub, seqs: range, now: float = 0) -> None:
    for seq in seqs:
        hub.apply_event("col", update_event("svc", 7, seq, {1: float(seq)}), now)


def connected(hub: Hub) -> tuple[object, BufferSink]:
    sink = BufferSink()
    client = hub.connect(sink, 0)
    sink.drain()
    return client, sink


def test_connect_sends_hello_then_catalog() -> None:
    hub = make_hub()
    sink = BufferSink()
    hub.connect(sink, 0)
    hello, catalog = sink.drain()
    assert hello.hello.protocol == "metrics-bridge.v1"
    assert hello.hello.heartbeat_interval_ms == 1000
    assert hello.hello.limits.resume_window == 8
    assert [c.channel for c in catalog.catalog.channels] == ["col/svc"]
    assert catalog.catalog.channels[0].state == LIVE


def test_connect_over_max_connections_is_refused_with_1013() -> None:
    hub = make_hub(max_connections=1)
    hub.connect(BufferSink(), 0)
    with pytest.raises(Exception) as caught:
        hub.connect(BufferSink(), 0)
    assert caught.value.code == CloseCode.TRY_AGAIN_LATER  # type: ignore[attr-defined]


def test_subscribe_sends_ack_then_the_latest_snapshot_then_updates_in_order() -> None:
    hub = make_hub()
    push_updates(hub, range(1, 3))
    client, sink = connected(hub)
    subscribe(hub, client)
    push_updates(hub, range(3, 5))
    messages = sink.drain()
    assert bodies(messages) == ["subscribed", "snapshot", "update", "update"]
    assert not messages[0].subscribed.recovered
    assert snapshot_values(messages[1]) == {1: 2.0}
    assert [m.update.seq for m in messages[2:]] == [3, 4]
    assert all(m.channel == "col/svc" for m in messages)


def test_every_subscriber_gets_the_same_update_bytes() -> None:
    hub = make_hub()
    sinks = []
    for _ in range(3):
        client, sink = connected(hub)
        subscribe(hub, client)
        sink.drain()
        sinks.append(sink)
    push_updates(hub, range(1, 2))
    assert sinks[0].pending == sinks[1].pending == sinks[2].pending
    assert len(sinks[0].pending) == 1


def test_resume_gets_exactly_the_missed_updates_flagged_recovered() -> None:
    hub = make_hub()
    push_updates(hub, range(1, 6))
    client, sink = connected(hub)
    subscribe(hub, client, resume=(7, 3))
    messages = sink.drain()
    assert bodies(messages) == ["subscribed", "update", "update"]
    assert messages[0].subscribed.recovered
    assert [m.update.seq for m in messages[1:]] == [4, 5]
    assert hub.counters.recoveries == 1


def test_resume_beyond_the_ring_gets_a_snapshot_not_recovered() -> None:
    hub = make_hub()
    push_updates(hub, range(1, 20))
    client, sink = connected(hub)
    subscribe(hub, client, resume=(7, 2))
    messages = sink.drain()
    assert bodies(messages) == ["subscribed", "snapshot"]
    assert not messages[0].subscribed.recovered
    assert messages[1].snapshot.seq == 19
    assert hub.counters.recovery_misses == 1


def test_unsubscribed_client_gets_no_more_updates() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    message = bridge_pb2.ClientMessage(unsubscribe=bridge_pb2.Unsubscribe(channels=["col/svc"]))
    hub.receive(client, message.SerializeToString(), 0)  # type: ignore[arg-type]
    sink.drain()
    push_updates(hub, range(1, 3))
    assert sink.drain() == []


def test_slow_client_skips_updates_and_fast_client_gets_all_of_them() -> None:
    hub = make_hub()
    slow_client, slow = connected(hub)
    fast_client, fast = connected(hub)
    subscribe(hub, slow_client)
    subscribe(hub, fast_client)
    fast_seqs: list[int] = []
    for seq in range(1, 200):
        push_updates(hub, range(seq, seq + 1))
        fast_seqs += [m.update.seq for m in fast.drain() if m.HasField("update")]
    assert fast_seqs == list(range(1, 200))
    assert slow.buffered() <= 2000
    assert hub.counters.updates_skipped > 0


def test_slow_client_is_resynced_with_a_snapshot_once_drained() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    push_updates(hub, range(1, 200))
    received = sink.drain()
    push_updates(hub, range(200, 202))
    received += sink.drain()
    tail = [m for m in received if m.HasField("update") or m.HasField("snapshot")]
    kinds = bodies(tail)
    resync = kinds.index("snapshot", 1)
    assert tail[resync].snapshot.seq == 200
    assert snapshot_values(tail[resync]) == {1: 200.0}
    assert [m.update.seq for m in tail[resync + 1 :]] == [201]
    assert hub.counters.resyncs == 1


def test_quiet_channel_is_resynced_by_the_tick_once_drained() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    push_updates(hub, range(1, 200))
    sink.drain()
    resyncs = hub.counters.resyncs
    hub.tick(0.5)
    messages = sink.drain()
    assert bodies(messages) == ["snapshot"]
    assert messages[0].snapshot.seq == 199
    assert hub.counters.resyncs == resyncs + 1


def test_client_stuck_past_the_timeout_is_closed_with_4000() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    push_updates(hub, range(1, 200), now=10)
    hub.tick(12)
    assert sink.closed is None
    hub.tick(13.5)
    assert sink.closed is not None and sink.closed[0] == 4000
    assert hub.counters.slow_client_closes == 1
    assert client not in hub.clients
    assert not hub.pools["col/svc"]


def test_heartbeat_carries_server_time_and_subscribed_positions() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    push_updates(hub, range(1, 4))
    sink.drain()
    hub.tick(0.5)
    assert sink.drain() == []
    hub.tick(1.0)
    (message,) = sink.drain()
    assert message.heartbeat.server_time_ms == 1234
    assert [(p.channel, p.position.epoch, p.position.seq) for p in message.heartbeat.positions] == [
        ("col/svc", 7, 3)
    ]


def test_collector_loss_sends_stale_status_and_keeps_the_client() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    sink.drain()
    hub.set_collector_state("col", STALE, "collector unreachable", 0)
    (message,) = sink.drain()
    assert message.channel == "col/svc"
    assert message.status.state == STALE
    assert client in hub.clients


def test_subscribing_to_a_stale_channel_gets_snapshot_then_stale_status() -> None:
    hub = make_hub()
    hub.set_collector_state("col", STALE, "down", 0)
    client, sink = connected(hub)
    subscribe(hub, client)
    assert bodies(sink.drain()) == ["subscribed", "snapshot", "status"]


def test_new_epoch_snapshot_reaches_subscribers_and_marks_the_channel_live() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    hub.set_collector_state("col", STALE, "down", 0)
    sink.drain()
    hub.apply_event("col", snapshot_event("svc", 99, 0, {5: 5.0}), 0)
    messages = sink.drain()
    assert bodies(messages) == ["status", "snapshot"]
    assert messages[0].status.state == LIVE
    assert messages[1].snapshot.epoch == 99


def test_removed_source_sends_status_removed_and_ends_subscriptions() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    sink.drain()
    hub.retain_sources("col", set(), 0)
    (message,) = sink.drain()
    assert message.status.state == REMOVED
    assert "col/svc" not in hub.channels
    assert client.session.subscriptions == {}  # type: ignore[attr-defined]


def test_catalog_change_is_sent_on_the_next_tick() -> None:
    hub = make_hub()
    _client, sink = connected(hub)
    hub.apply_event("col", snapshot_event("other", 1, 0), 0)
    assert sink.drain() == []
    hub.tick(0.1)
    (message,) = sink.drain()
    assert [c.channel for c in message.catalog.channels] == ["col/other", "col/svc"]
    hub.tick(0.2)
    assert sink.drain() == []


def test_malformed_message_closes_only_that_client_with_1007() -> None:
    hub = make_hub()
    bad_client, bad = connected(hub)
    good_client, good = connected(hub)
    subscribe(hub, good_client)
    hub.receive(bad_client, b"\xff\xff", 0)  # type: ignore[arg-type]
    assert bad.closed is not None and bad.closed[0] == 1007
    push_updates(hub, range(1, 2))
    assert bodies(good.drain()) == ["subscribed", "snapshot", "update"]


def test_ping_without_pong_closes_the_client() -> None:
    hub = make_hub()
    _client, sink = connected(hub)
    hub.tick(5)
    assert len(sink.pings) == 1
    hub.tick(10.5)
    assert sink.closed is not None and sink.closed[0] == 1011
    assert hub.counters.ping_timeouts == 1


def test_pong_keeps_the_client() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    hub.tick(5)
    hub.pong(client, sink.pings[0], 5.1)  # type: ignore[arg-type]
    hub.tick(10.5)
    assert sink.closed is None


def test_client_ping_is_answered_with_a_pong() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    hub.receive(
        client,  # type: ignore[arg-type]
        bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=9)).SerializeToString(),
        0,
    )
    (message,) = sink.drain()
    assert (message.pong.nonce, message.pong.server_time_ms) == (9, 1234)


def test_update_with_a_gap_publishes_nothing_and_asks_for_a_resync() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    subscribe(hub, client)
    sink.drain()
    hub.apply_event("col", update_event("svc", 7, 5), 0)
    assert sink.drain() == []
    assert hub.positions("col")["svc"].seq == 0
    assert [r.sources for r in hub.resyncs_wanted] == [("svc",)]
    assert hub.counters.upstream_resyncs == {"seq_jump": 1}
    hub.apply_event("col", snapshot_event("svc", 7, 4), 0)  # what GetSnapshot answered
    messages = sink.drain()
    assert bodies(messages) == ["snapshot", "update"]
    assert messages[1].update.seq == 5


class HalvingSink(BufferSink):
    """A connection whose frames take half their size on the wire (as compression would)."""

    def write(self, frame: Frame) -> int:
        super().write(frame)
        return len(frame.wire) // 2


def test_bytes_sent_counts_what_each_connection_put_on_its_wire() -> None:
    hub = make_hub()
    client, sink = connected(hub)
    halving = HalvingSink()
    other = hub.connect(halving, 0)
    halving.drain()
    subscribe(hub, client)
    subscribe(hub, other)
    sink.drain()
    halving.drain()
    before = hub.counters.bytes_sent
    push_updates(hub, range(1, 2))
    (wire,) = sink.pending
    assert hub.counters.bytes_sent - before == len(wire) + len(wire) // 2


def test_clients_connected_together_get_their_first_pings_spread_over_half_an_interval() -> None:
    phases = iter([0.0, 0.5, 1.0])
    hub = make_hub(phase=lambda: next(phases))
    sinks = [connected(hub)[1] for _ in range(3)]
    pinged_by = []
    for now in (2.5, 3.75, 5.0):
        hub.tick(now)
        pinged_by.append(sum(len(sink.pings) for sink in sinks))
    assert pinged_by == [1, 2, 3]
