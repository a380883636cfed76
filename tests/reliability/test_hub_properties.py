"""Hub and Session under random client traffic (hypothesis).

Whatever a client sends (random bytes, text, valid messages in any order,
Subscribe/Unsubscribe with huge repeated fields), interleaved with upstream
events, ticks and partial drains:
- no exception leaves the hub (`Hub.receive`, `Hub.tick`, `Hub.apply_event`);
- every close carries a code listed in docs/protocol.md's close-code table;
- a client's outbound buffer stays under its documented bound (2 x limit
  plus one snapshot) and its subscriptions under `max_subscriptions`;
- the hub forgets a closed client: it is in no pool.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import BridgeConfig
from bridge.hub import ClientPolicy, Hub
from bridge.session import Timers
from metrics_bridge.v1 import bridge_pb2
from tests.bridge.events import snapshot_event, update_event
from tests.bridge.test_hub import BufferSink

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BUFFER = 4000
MAX_SUBSCRIPTIONS = 5
CHANNELS = ["col/a", "col/b", "col/c"]


def documented_close_codes() -> set[int]:
    text = PROTOCOL_DOC.read_text().split("## Close codes", 1)[1]
    codes: set[int] = set()
    for line in text.splitlines():
        cell = re.match(r"\|\s*([\d, ]+)\s*\|", line)
        if cell:
            codes.update(int(c) for c in re.findall(r"\d{4}", cell.group(1)))
        elif codes and not line.startswith("|"):
            break
    return codes


DOCUMENTED = documented_close_codes()

names = st.one_of(st.sampled_from([*CHANNELS, "col/missing", ""]), st.text(max_size=40))


def subscribe_message(items: list[tuple[str, tuple[int, int] | None]]) -> bytes:
    message = bridge_pb2.ClientMessage()
    for name, resume in items:
        item = message.subscribe.channels.add(channel=name)
        if resume is not None:
            item.resume.epoch, item.resume.seq = resume
    return message.SerializeToString()


def unsubscribe_message(channels: list[str]) -> bytes:
    message = bridge_pb2.ClientMessage()
    message.unsubscribe.channels.extend(channels)
    return message.SerializeToString()


def ping_message(nonce: int) -> bytes:
    message = bridge_pb2.ClientMessage()
    message.ping.nonce = nonce
    return message.SerializeToString()


def token_message(kind: str, token: str) -> bytes:
    message = bridge_pb2.ClientMessage()
    getattr(message, kind).token = token
    return message.SerializeToString()


resumes = st.one_of(
    st.none(),
    st.tuples(st.sampled_from([0, 7, 8, 2**64 - 1]), st.integers(0, 2**64 - 1)),
)
client_messages = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=20),
    st.builds(subscribe_message, st.lists(st.tuples(names, resumes), max_size=12)),
    st.builds(unsubscribe_message, st.lists(names, max_size=12)),
    st.builds(ping_message, st.integers(0, 2**64 - 1)),
    st.builds(token_message, st.sampled_from(["connect", "refresh"]), st.text(max_size=30)),
    st.just(bridge_pb2.ClientMessage().SerializeToString()),
    # Huge repeated fields: thousands of channels in one message.
    st.builds(
        lambda n, name: subscribe_message([(name, None)] * n), st.integers(1000, 5000), names
    ),
    st.builds(lambda n: unsubscribe_message(CHANNELS * n), st.integers(1000, 3000)),
)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("message"), st.integers(0, 2), client_messages),
        st.tuples(st.just("update"), st.sampled_from(CHANNELS), st.integers(1, 400)),
        st.tuples(st.just("snapshot"), st.sampled_from(CHANNELS), st.integers(1, 400)),
        st.tuples(st.just("tick"), st.floats(0, 3)),
        st.tuples(st.just("drain"), st.integers(0, 2)),
        st.tuples(st.just("connect")),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_client_traffic_never_breaks_the_hub(script: list[tuple[object, ...]]) -> None:
    limits = replace(BridgeConfig().limits(), resume_window=8, max_subscriptions=MAX_SUBSCRIPTIONS)
    hub = Hub(
        limits=limits,
        timers=Timers(heartbeat_interval=1, ping_interval=2, ping_timeout=2),
        policy=ClientPolicy(buffer_bytes=BUFFER, slow_timeout=4),
        max_connections=2,
        server_version="test",
        wall_ms=lambda: 1234,
        phase=lambda: 1.0,
    )
    seqs: dict[str, int] = {}
    for name in CHANNELS:
        source = name.split("/")[1]
        hub.apply_event("col", snapshot_event(source, 8, 0, {1: 0.0}), 0)
        seqs[name] = 0
    sinks: list[BufferSink] = []
    clients = []
    now = 0.0
    largest_snapshot = 0

    def connect() -> None:
        sink = BufferSink()
        try:
            clients.append(hub.connect(sink, now))
        except Exception as error:  # AtCapacity is a documented refusal, not a crash
            assert getattr(error, "code", None) == 1013
            return
        sinks.append(sink)

    connect()
    connect()
    for step in script:
        kind = step[0]
        if kind == "message":
            index, data = step[1], step[2]
            assert isinstance(index, int) and isinstance(data, bytes | str)
            if index < len(clients) and clients[index] in hub.clients:
                hub.receive(clients[index], data, now)
        elif kind == "update":
            name, values = str(step[1]), step[2]
            assert isinstance(values, int)
            seqs[name] += 1
            source = name.split("/")[1]
            hub.apply_event("col", update_event(source, 8, seqs[name], {1: float(values)}), now)
        elif kind == "snapshot":
            name, count = str(step[1]), step[2]
            assert isinstance(count, int)
            source = name.split("/")[1]
            event = snapshot_event(source, 8, seqs[name], {i: 1.0 for i in range(count)})
            largest_snapshot = max(largest_snapshot, len(event) + 64)
            hub.apply_event("col", event, now)
        elif kind == "tick":
            delta = step[1]
            assert isinstance(delta, float)
            now += delta
            hub.tick(now)
        elif kind == "drain":
            index = step[1]
            assert isinstance(index, int)
            if index < len(sinks):
                sinks[index].drain()
                for client in clients:
                    if client.sink is sinks[index]:
                        hub.pong(client, client.session.ping_payload, now)
        else:
            connect()
        for client in clients:
            sink = client.sink
            assert isinstance(sink, BufferSink)
            if sink.closed is not None:
                assert sink.closed[0] in DOCUMENTED, sink.closed
                assert client not in hub.clients
                assert all(client not in pool for pool in hub.pools.values())
            else:
                assert sink.buffered() <= 2 * BUFFER + largest_snapshot + 4096
                assert len(client.session.subscriptions) <= MAX_SUBSCRIPTIONS


def test_the_close_code_table_is_read_from_the_protocol_doc() -> None:
    assert {1003, 1007, 1008, 1011, 1013, 4000, 4001, 4500, 4501} <= DOCUMENTED


def test_a_client_closed_by_its_own_subscribe_is_in_no_pool() -> None:
    """Found by the property above: 1,000 snapshots in one Subscribe overflow the
    buffer, the client is closed, and the rest of the request must not re-add it."""
    script: list[tuple[object, ...]] = [
        ("message", 0, subscribe_message([("col/a", None)] * 1000)),
        ("update", "col/a", 3),
    ]
    test_random_client_traffic_never_breaks_the_hub.hypothesis.inner_test(script)  # type: ignore[attr-defined]
