"""Hub with `--auth jwt`: Connect before Hello, claims, refresh and expiry, with plain sinks."""

from __future__ import annotations

from typing import Any

from bridge.auth import TokenVerifier, secret_key
from bridge.errors import CloseCode
from bridge.hub import Client, Hub
from metrics_bridge.v1 import bridge_pb2
from tests.bridge.events import snapshot_event
from tests.bridge.test_hub import BufferSink, bodies, make_hub
from tests.support.tokens import AUDIENCE, SECRET, token

WALL = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.wall = WALL


def token_hub(clock: Clock) -> Hub:
    verifier = TokenVerifier(
        secret_key(SECRET), wall_clock=lambda: clock.wall, audience=AUDIENCE, leeway=0
    )
    hub = make_hub(access=verifier, token_timeout=2.0, wall_ms=lambda: int(clock.wall * 1000))
    hub.apply_event("col", snapshot_event("other", 3, 0, {1: 0.0}), 0)
    hub.tick(0)
    return hub


def send(hub: Hub, client: Client, now: float = 0, **body: object) -> None:
    hub.receive(client, bridge_pb2.ClientMessage(**body).SerializeToString(), now)  # type: ignore[arg-type]


def connect(hub: Hub, clock: Clock, ttl: float = 60, **claims: Any) -> tuple[Client, BufferSink]:
    sink = BufferSink()
    client = hub.connect(sink, 0)
    text = token(now=clock.wall, ttl=ttl, **claims)
    send(hub, client, connect=bridge_pb2.Connect(token=text))
    return client, sink


def catalog_names(message: bridge_pb2.ServerMessage) -> list[str]:
    return [c.channel for c in message.catalog.channels]


def subscribe(hub: Hub, client: Client, *channels: str, now: float = 0) -> None:
    requests = [bridge_pb2.ChannelRequest(channel=c) for c in channels]
    send(hub, client, now, subscribe=bridge_pb2.Subscribe(channels=requests))


def test_nothing_is_sent_before_the_token_and_hello_then_catalog_after_it() -> None:
    clock = Clock()
    hub = token_hub(clock)
    sink = BufferSink()
    client = hub.connect(sink, 0)
    hub.tick(1.5)  # past a heartbeat interval: still silent
    assert sink.drain() == []
    send(hub, client, connect=bridge_pb2.Connect(token=token(now=clock.wall)))
    assert bodies(sink.drain()) == ["hello", "catalog"]


def test_the_catalog_lists_only_the_granted_channels_and_others_look_unknown() -> None:
    clock = Clock()
    hub = token_hub(clock)
    client, sink = connect(hub, clock, channels=["col/svc"])
    messages = sink.drain()
    assert catalog_names(messages[1]) == ["col/svc"]
    subscribe(hub, client, "col/other", "col/nonexistent")
    errors = [m for m in sink.drain() if m.HasField("error")]
    assert [(m.channel, m.error.code, m.error.message) for m in errors] == [
        ("col/other", bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL, "unknown channel"),
        ("col/nonexistent", bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL, "unknown channel"),
    ]
    assert hub.counters.refusals == {"channel_not_granted": 1}


def test_a_first_message_other_than_connect_closes_with_4500() -> None:
    hub = token_hub(Clock())
    sink = BufferSink()
    client = hub.connect(sink, 0)
    subscribe(hub, client, "col/svc")
    assert sink.closed is not None and sink.closed[0] == CloseCode.TOKEN_REQUIRED
    assert hub.counters.refusals == {"missing_token": 1}


def test_no_connect_within_the_token_timeout_closes_with_4500() -> None:
    hub = token_hub(Clock())
    sink = BufferSink()
    hub.connect(sink, 0)
    hub.tick(1.9)
    assert sink.closed is None
    hub.tick(2.0)
    assert sink.closed is not None and sink.closed[0] == CloseCode.TOKEN_REQUIRED


def test_a_bad_token_closes_with_4501_and_an_expired_one_with_4001() -> None:
    clock = Clock()
    hub = token_hub(clock)
    bad = BufferSink()
    send(hub, hub.connect(bad, 0), connect=bridge_pb2.Connect(token="x.y.z"))
    assert bad.closed is not None and bad.closed[0] == CloseCode.TOKEN_INVALID
    old = BufferSink()
    stale = token(now=clock.wall - 100, ttl=10)
    send(hub, hub.connect(old, 0), connect=bridge_pb2.Connect(token=stale))
    assert old.closed == (CloseCode.TOKEN_EXPIRED, "token expired")
    assert hub.counters.refusals == {"malformed": 1, "expired": 1}
    # Nothing lost: the hub keeps serving a good client.
    _, sink = connect(hub, clock)
    assert bodies(sink.drain()) == ["hello", "catalog"]


def test_at_exp_without_refresh_the_connection_closes_with_4001() -> None:
    clock = Clock()
    hub = token_hub(clock)
    _, sink = connect(hub, clock, ttl=10)
    clock.wall += 9
    hub.tick(9)
    assert sink.closed is None
    clock.wall += 1
    hub.tick(10)
    assert sink.closed is not None and sink.closed[0] == CloseCode.TOKEN_EXPIRED
    assert "expired" in sink.closed[1]


def test_refresh_keeps_the_connection_and_its_subscriptions() -> None:
    clock = Clock()
    hub = token_hub(clock)
    client, sink = connect(hub, clock, ttl=10)
    subscribe(hub, client, "col/svc")
    sink.drain()
    clock.wall += 8
    send(hub, client, 8, refresh=bridge_pb2.Refresh(token=token(now=clock.wall, ttl=10)))
    clock.wall += 5
    hub.tick(13)
    assert sink.closed is None
    assert list(client.session.subscriptions) == ["col/svc"]
    assert client in hub.pools["col/svc"]


def test_a_narrower_refresh_ends_the_subscriptions_it_no_longer_allows() -> None:
    clock = Clock()
    hub = token_hub(clock)
    client, sink = connect(hub, clock)
    subscribe(hub, client, "col/svc", "col/other")
    sink.drain()
    narrower = token(now=clock.wall, channels=["col/svc"])
    send(hub, client, refresh=bridge_pb2.Refresh(token=narrower))
    messages = sink.drain()
    assert [(m.channel, m.error.code) for m in messages if m.HasField("error")] == [
        ("col/other", bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL)
    ]
    assert [catalog_names(m) for m in messages if m.HasField("catalog")] == [["col/svc"]]
    assert client not in hub.pools["col/other"]


def test_a_bad_refresh_closes_like_a_bad_connect() -> None:
    clock = Clock()
    hub = token_hub(clock)
    client, sink = connect(hub, clock)
    send(hub, client, refresh=bridge_pb2.Refresh(token=token(b"w" * 40, now=clock.wall)))
    assert sink.closed is not None and sink.closed[0] == CloseCode.TOKEN_INVALID


def test_without_auth_connect_and_refresh_are_ignored() -> None:
    hub = make_hub()
    sink = BufferSink()
    client = hub.connect(sink, 0)
    assert bodies(sink.drain()) == ["hello", "catalog"]
    send(hub, client, connect=bridge_pb2.Connect(token="anything"))
    send(hub, client, refresh=bridge_pb2.Refresh(token="anything"))
    assert sink.drain() == [] and sink.closed is None
