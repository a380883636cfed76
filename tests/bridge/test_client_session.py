"""ClientSession: the protocol rules of the Python client, driven frame by frame."""

from __future__ import annotations

import pytest

from bridge.client.errors import ProtocolViolation
from bridge.client.session import (
    ChannelSynced,
    ChannelUpdated,
    ClientSession,
    GapDetected,
    HelloReceived,
    Phase,
    ServerError,
    StatusChanged,
)
from bridge.client.state import ViewPosition
from metrics_bridge.v1 import bridge_pb2, metrics_pb2
from tests.bridge.test_client_state import EPOCH, snapshot, update

CHANNEL = "c/svc"


def frame(channel: str = "", **body: object) -> bytes:
    return bridge_pb2.ServerMessage(channel=channel, **body).SerializeToString()  # type: ignore[arg-type]


def hello(heartbeat_ms: int = 1000) -> bytes:
    return frame(
        hello=bridge_pb2.Hello(protocol="metrics-bridge.v1", heartbeat_interval_ms=heartbeat_ms)
    )


def subscribed(recovered: bool, seq: int = 0) -> bytes:
    position = metrics_pb2.Position(epoch=EPOCH, seq=seq)
    return frame(CHANNEL, subscribed=bridge_pb2.Subscribed(recovered=recovered, position=position))


def sent_requests(session: ClientSession) -> list[bridge_pb2.ClientMessage]:
    messages = []
    for data in session.data_to_send():
        message = bridge_pb2.ClientMessage()
        message.ParseFromString(data)
        messages.append(message)
    return messages


def live_session(seq: int = 7) -> ClientSession:
    session = ClientSession([CHANNEL])
    session.connection_opened(now=0)
    session.receive(hello(), now=0)
    session.data_to_send()
    session.receive(subscribed(False, seq), now=0)
    session.receive(frame(CHANNEL, snapshot=snapshot(seq, {1: 0.5})), now=0)
    return session


def test_wanted_channels_are_subscribed_after_hello_without_resume_at_first() -> None:
    session = ClientSession([CHANNEL])
    session.connection_opened(now=0)
    assert sent_requests(session) == []
    assert isinstance(session.receive(hello(), now=0)[0], HelloReceived)
    [message] = sent_requests(session)
    [request] = message.subscribe.channels
    assert request.channel == CHANNEL
    assert not request.HasField("resume")


def test_snapshot_after_subscribed_makes_the_channel_live() -> None:
    session = live_session(seq=7)
    assert session.phases[CHANNEL] is Phase.LIVE
    assert session.views[CHANNEL].position == ViewPosition(EPOCH, 7)


def test_following_update_is_applied_and_reported() -> None:
    session = live_session(seq=7)
    [event] = session.receive(frame(CHANNEL, update=update(8, {1: 0.9})), now=1)
    assert isinstance(event, ChannelUpdated)
    assert event.position == ViewPosition(EPOCH, 8)
    assert session.views[CHANNEL].value("cpu", core="0") == 0.9


def test_gap_resubscribes_resuming_from_the_last_applied_position() -> None:
    session = live_session(seq=7)
    [event] = session.receive(frame(CHANNEL, update=update(9, {1: 0.9})), now=1)
    assert isinstance(event, GapDetected)
    [message] = sent_requests(session)
    [request] = message.subscribe.channels
    assert request.channel == CHANNEL
    assert (request.resume.epoch, request.resume.seq) == (EPOCH, 7)
    assert session.phases[CHANNEL] is Phase.PENDING
    assert session.views[CHANNEL].value("cpu", core="0") == 0.5, "kept until the snapshot"


def test_gaps_while_resubscribing_do_not_send_more_subscribes() -> None:
    session = live_session(seq=7)
    session.receive(frame(CHANNEL, update=update(9, {1: 0.9})), now=1)
    sent_requests(session)
    assert session.receive(frame(CHANNEL, update=update(10, {1: 1.0})), now=1) == []
    assert sent_requests(session) == []


def test_recovered_subscription_continues_with_the_missed_updates() -> None:
    session = live_session(seq=7)
    session.receive(frame(CHANNEL, update=update(9, {1: 0.9})), now=1)
    sent_requests(session)
    [synced] = session.receive(subscribed(True, seq=9), now=1)
    assert synced == ChannelSynced(CHANNEL, True, ViewPosition(EPOCH, 7))
    session.receive(frame(CHANNEL, update=update(8, {1: 0.8})), now=1)
    session.receive(frame(CHANNEL, update=update(9, {1: 0.9})), now=1)
    assert session.views[CHANNEL].position == ViewPosition(EPOCH, 9)
    assert session.views[CHANNEL].value("cpu", core="0") == 0.9


def test_updates_are_dropped_while_a_snapshot_is_awaited() -> None:
    session = live_session(seq=7)
    session.receive(frame(CHANNEL, update=update(20, {1: 2.0})), now=1)
    sent_requests(session)
    session.receive(subscribed(False, seq=30), now=1)
    assert session.receive(frame(CHANNEL, update=update(8, {1: 0.8})), now=1) == []
    session.receive(frame(CHANNEL, snapshot=snapshot(30, {1: 3.0})), now=1)
    assert session.views[CHANNEL].value("cpu", core="0") == 3.0
    assert session.phases[CHANNEL] is Phase.LIVE


def heartbeat_at(seq: int) -> bytes:
    position = bridge_pb2.ChannelPosition(
        channel=CHANNEL, position=metrics_pb2.Position(epoch=EPOCH, seq=seq)
    )
    return frame(heartbeat=bridge_pb2.Heartbeat(server_time_ms=1, positions=[position]))


def test_heartbeat_ahead_twice_resubscribes_resuming_from_the_view() -> None:
    session = live_session(seq=7)
    assert not any(isinstance(e, GapDetected) for e in session.receive(heartbeat_at(8), now=1))
    assert sent_requests(session) == []
    events = session.receive(heartbeat_at(8), now=2)
    assert any(isinstance(e, GapDetected) for e in events)
    [message] = sent_requests(session)
    [request] = message.subscribe.channels
    assert (request.resume.epoch, request.resume.seq) == (EPOCH, 7)


def test_heartbeat_ahead_is_forgotten_once_the_view_catches_up() -> None:
    session = live_session(seq=7)
    session.receive(heartbeat_at(8), now=1)
    session.receive(frame(CHANNEL, update=update(8, {1: 0.8})), now=1)
    events = session.receive(heartbeat_at(8), now=2)
    assert not any(isinstance(e, GapDetected) for e in events)
    assert sent_requests(session) == []


def test_heartbeat_ahead_is_forgotten_after_a_resync_snapshot() -> None:
    session = live_session(seq=7)
    session.receive(heartbeat_at(9), now=1)
    session.receive(frame(CHANNEL, snapshot=snapshot(9, {1: 0.9})), now=1)
    assert not any(isinstance(e, GapDetected) for e in session.receive(heartbeat_at(9), now=2))


def test_reconnect_resubscribes_with_resume_after_the_new_hello() -> None:
    session = live_session(seq=7)
    session.receive(frame(CHANNEL, update=update(8, {1: 0.8})), now=1)
    session.connection_opened(now=5)
    assert sent_requests(session) == []
    session.receive(hello(), now=5)
    [message] = sent_requests(session)
    [request] = message.subscribe.channels
    assert (request.resume.epoch, request.resume.seq) == (EPOCH, 8)


def test_link_deadline_is_miss_factor_heartbeats_after_the_last_frame() -> None:
    session = ClientSession([CHANNEL], miss_factor=3, hello_timeout=10)
    session.connection_opened(now=100)
    assert session.link_deadline() == 110
    session.receive(hello(heartbeat_ms=500), now=101)
    assert session.link_deadline() == pytest.approx(102.5)
    session.receive(frame(heartbeat=bridge_pb2.Heartbeat(server_time_ms=1)), now=102)
    assert session.link_deadline() == pytest.approx(103.5)


def unknown_channel_session() -> ClientSession:
    session = ClientSession([CHANNEL, "c/other"])
    session.connection_opened(now=0)
    session.receive(hello(), now=0)
    sent_requests(session)
    error = bridge_pb2.Error(code=bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL, message="no such channel")
    [event] = session.receive(frame("c/other", error=error), now=0)
    assert isinstance(event, ServerError)
    return session


def test_unknown_channel_stays_wanted_without_asking_again_at_once() -> None:
    session = unknown_channel_session()
    assert session.wanted == [CHANNEL, "c/other"]
    assert sent_requests(session) == []


def test_unknown_channel_is_subscribed_again_once_a_catalog_lists_it() -> None:
    session = unknown_channel_session()
    listed = bridge_pb2.Catalog(channels=[bridge_pb2.ChannelInfo(channel="c/other")])
    session.receive(frame(catalog=listed), now=1)
    [message] = sent_requests(session)
    assert [r.channel for r in message.subscribe.channels] == ["c/other"]


def test_catalog_does_not_resubscribe_channels_already_subscribed() -> None:
    session = live_session()
    listed = bridge_pb2.Catalog(channels=[bridge_pb2.ChannelInfo(channel=CHANNEL)])
    session.receive(frame(catalog=listed), now=1)
    assert sent_requests(session) == []


def test_too_many_subscriptions_error_stops_asking_for_it() -> None:
    session = ClientSession([CHANNEL, "c/other"])
    session.connection_opened(now=0)
    session.receive(hello(), now=0)
    sent_requests(session)
    error = bridge_pb2.Error(code=bridge_pb2.ERROR_CODE_TOO_MANY_SUBSCRIPTIONS, message="limit")
    session.receive(frame("c/other", error=error), now=0)
    assert session.wanted == [CHANNEL]


def test_subscribe_after_hello_is_sent_once_for_new_channels_only() -> None:
    session = live_session()
    session.subscribe([CHANNEL, "c/new"])
    [message] = sent_requests(session)
    assert [r.channel for r in message.subscribe.channels] == ["c/new"]


def test_undecodable_frame_is_a_protocol_violation() -> None:
    session = ClientSession([CHANNEL])
    session.connection_opened(now=0)
    with pytest.raises(ProtocolViolation):
        session.receive(b"\xff\xff\xff", now=0)


def test_hello_of_another_protocol_is_a_protocol_violation() -> None:
    session = ClientSession([CHANNEL])
    session.connection_opened(now=0)
    with pytest.raises(ProtocolViolation):
        session.receive(frame(hello=bridge_pb2.Hello(protocol="metrics-bridge.v9")), now=0)


def test_hello_with_an_empty_protocol_is_a_protocol_violation() -> None:
    session = ClientSession([CHANNEL])
    session.connection_opened(now=0)
    with pytest.raises(ProtocolViolation):
        session.receive(frame(hello=bridge_pb2.Hello(heartbeat_interval_ms=1000)), now=0)
    assert sent_requests(session) == []


def test_hello_without_a_heartbeat_interval_is_a_protocol_violation() -> None:
    session = ClientSession([CHANNEL])
    session.connection_opened(now=0)
    with pytest.raises(ProtocolViolation):
        session.receive(hello(heartbeat_ms=0), now=0)
    assert session.hello is None, "the link deadline stays the hello timeout"


def test_link_is_dead_at_the_deadline_not_before() -> None:
    session = ClientSession([CHANNEL], miss_factor=2.5, hello_timeout=10)
    session.connection_opened(now=0)
    assert not session.link_dead(9.5)
    assert session.link_dead(10)
    session.receive(hello(heartbeat_ms=2000), now=10)
    assert not session.link_dead(14.5)
    assert session.link_dead(15)


def removed_session() -> ClientSession:
    session = live_session(seq=7)
    status = bridge_pb2.Status(state=bridge_pb2.UPSTREAM_STATE_REMOVED, detail="source removed")
    [event] = session.receive(frame(CHANNEL, status=status), now=1)
    assert isinstance(event, StatusChanged)
    return session


def test_removed_channel_keeps_its_view_and_stays_wanted_without_asking() -> None:
    session = removed_session()
    assert sent_requests(session) == []
    assert session.wanted == [CHANNEL]
    assert session.views[CHANNEL].value("cpu", core="0") == 0.5
    assert session.receive(frame(CHANNEL, update=update(8, {1: 0.8})), now=2) == []


def test_removed_channel_is_subscribed_again_once_a_catalog_lists_it() -> None:
    session = removed_session()
    listed = bridge_pb2.Catalog(channels=[bridge_pb2.ChannelInfo(channel=CHANNEL)])
    session.receive(frame(catalog=listed), now=3)
    [message] = sent_requests(session)
    [request] = message.subscribe.channels
    assert (request.channel, request.resume.epoch, request.resume.seq) == (CHANNEL, EPOCH, 7)


def test_invalid_update_resubscribes_without_resume() -> None:
    session = live_session(seq=7)
    [event] = session.receive(frame(CHANNEL, update=update(8, {5: 1.0})), now=1)
    assert isinstance(event, GapDetected)
    [message] = sent_requests(session)
    [request] = message.subscribe.channels
    assert not request.HasField("resume")


def test_a_rate_set_while_disconnected_goes_with_the_next_connections_subscribe() -> None:
    session = live_session()
    session.subscribe(["c/other"], history=True)
    session.set_rate([CHANNEL, "c/unwanted"], 10_000)
    assert session.options(CHANNEL) == (False, 10_000)
    assert session.options("c/other") == (True, 0)
    session.connection_opened(now=1)
    session.receive(hello(), now=1)
    (message,) = sent_requests(session)
    requests = {r.channel: r for r in message.subscribe.channels}
    assert (requests[CHANNEL].min_interval_ms, requests[CHANNEL].resume.seq) == (10_000, 7)
    assert requests["c/other"].history and requests["c/other"].min_interval_ms == 0
    assert "c/unwanted" not in requests


def test_a_snapshot_marked_stale_applies_and_its_reason_is_reported_and_counted() -> None:
    session = live_session(seq=7)
    marked = frame(CHANNEL, snapshot=snapshot(20, {1: 2.0}), resync=metrics_pb2.RESYNC_REASON_STALE)
    [event] = session.receive(marked, now=1)
    assert event == ChannelSynced(CHANNEL, False, ViewPosition(EPOCH, 20), resync="stale")
    assert sent_requests(session) == [], "the mark asks nothing of the client"
    assert session.phases[CHANNEL] is Phase.LIVE
    view = session.views[CHANNEL]
    assert (view.resyncs, view.last_resync) == ({"stale": 1}, "stale")
    [event] = session.receive(frame(CHANNEL, update=update(21, {1: 2.1})), now=1)
    assert isinstance(event, ChannelUpdated) and event.resync is None


def test_a_merged_update_marked_stale_applies_at_first_seq_minus_one() -> None:
    session = live_session(seq=7)
    merged = frame(
        CHANNEL,
        update=update(12, {1: 1.2}),
        first_seq=8,
        resync=metrics_pb2.RESYNC_REASON_STALE,
    )
    [event] = session.receive(merged, now=1)
    assert isinstance(event, ChannelUpdated)
    assert (event.position, event.resync) == (ViewPosition(EPOCH, 12), "stale")
    assert session.views[CHANNEL].resyncs == {"stale": 1}


def test_snapshots_answering_a_subscribe_are_not_resyncs() -> None:
    session = live_session(seq=7)
    [synced] = session.receive(frame(CHANNEL, snapshot=snapshot(9, {1: 0.9})), now=1)
    assert isinstance(synced, ChannelSynced) and synced.resync is None
    assert (session.views[CHANNEL].resyncs, session.views[CHANNEL].last_resync) == ({}, None)
