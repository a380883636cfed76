"""Session: client message validation, limits and timers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from bridge.channel import Position
from bridge.config import BridgeConfig
from bridge.errors import CloseCode, MalformedMessage, RateLimited, TextFrame
from bridge.session import (
    AnswerPing,
    Reply,
    Session,
    SubscribeChannel,
    Timers,
    UnsubscribeChannel,
)
from metrics_bridge.v1 import bridge_pb2, metrics_pb2

CHANNELS = {"c/a", "c/b", "c/c"}


def subscribe(*channels: str, resume: metrics_pb2.Position | None = None) -> bytes:
    request = bridge_pb2.Subscribe()
    for name in channels:
        item = request.channels.add(channel=name)
        if resume is not None:
            item.resume.CopyFrom(resume)
    return bridge_pb2.ClientMessage(subscribe=request).SerializeToString()


TIMERS = Timers(heartbeat_interval=1, ping_interval=2, ping_timeout=3)


def new_session(**limits: Any) -> Session:
    return Session(replace(BridgeConfig().limits(), **limits), TIMERS, 0)


def error_codes(actions: Sequence[object]) -> list[int]:
    return [a.message.error.code for a in actions if isinstance(a, Reply)]


def test_text_frame_closes_with_1003() -> None:
    with pytest.raises(TextFrame) as caught:
        new_session().receive("hello", 0, CHANNELS)
    assert caught.value.code is CloseCode.UNSUPPORTED_DATA


def test_undecodable_bytes_close_with_1007() -> None:
    with pytest.raises(MalformedMessage) as caught:
        new_session().receive(b"\xff\xff\xff", 0, CHANNELS)
    assert caught.value.code is CloseCode.INVALID_DATA


def test_subscribe_yields_one_request_per_channel_with_its_resume_position() -> None:
    session = new_session()
    actions = session.receive(
        subscribe("c/a", "c/b", resume=metrics_pb2.Position(epoch=5, seq=9)), 0, CHANNELS
    )
    assert actions == [
        SubscribeChannel("c/a", Position(5, 9)),
        SubscribeChannel("c/b", Position(5, 9)),
    ]
    assert list(session.subscriptions) == ["c/a", "c/b"]


def test_subscribe_without_resume_is_a_fresh_subscription() -> None:
    assert new_session().receive(subscribe("c/a"), 0, CHANNELS) == [SubscribeChannel("c/a", None)]


def test_subscribe_passes_history_and_the_rate_asked_for_to_the_hub() -> None:
    request = bridge_pb2.Subscribe()
    request.channels.add(channel="c/a", history=True, min_interval_ms=5000)
    request.channels.add(channel="c/b", min_interval_ms=1)
    message = bridge_pb2.ClientMessage(subscribe=request).SerializeToString()
    assert new_session().receive(message, 0, CHANNELS) == [
        SubscribeChannel("c/a", None, history=True, min_interval_ms=5000),
        SubscribeChannel("c/b", None, history=False, min_interval_ms=1),
    ]


def test_unknown_channel_gets_an_error_and_the_others_still_subscribe() -> None:
    actions = new_session().receive(subscribe("c/zzz", "c/a"), 0, CHANNELS)
    assert error_codes(actions) == [bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL]
    assert isinstance(actions[0], Reply) and actions[0].message.channel == "c/zzz"
    assert actions[1] == SubscribeChannel("c/a", None)


def test_subscriptions_past_the_limit_get_an_error() -> None:
    session = new_session(max_subscriptions=2)
    actions = session.receive(subscribe("c/a", "c/b", "c/c"), 0, CHANNELS)
    assert error_codes(actions) == [bridge_pb2.ERROR_CODE_TOO_MANY_SUBSCRIPTIONS]
    assert list(session.subscriptions) == ["c/a", "c/b"]


def test_resubscribing_does_not_count_twice_against_the_limit() -> None:
    session = new_session(max_subscriptions=1)
    session.receive(subscribe("c/a"), 0, CHANNELS)
    assert session.receive(subscribe("c/a"), 0, CHANNELS) == [SubscribeChannel("c/a", None)]


def test_empty_client_message_gets_a_bad_request_error() -> None:
    actions = new_session().receive(b"", 0, CHANNELS)
    assert error_codes(actions) == [bridge_pb2.ERROR_CODE_BAD_REQUEST]


def test_unsubscribe_is_acknowledged_even_when_not_subscribed() -> None:
    session = new_session()
    session.receive(subscribe("c/a"), 0, CHANNELS)
    message = bridge_pb2.ClientMessage(unsubscribe=bridge_pb2.Unsubscribe(channels=["c/a", "c/b"]))
    actions = session.receive(message.SerializeToString(), 0, CHANNELS)
    assert [a for a in actions if isinstance(a, UnsubscribeChannel)] == [
        UnsubscribeChannel("c/a"),
        UnsubscribeChannel("c/b"),
    ]
    replies = [a.message for a in actions if isinstance(a, Reply)]
    assert [(m.channel, m.WhichOneof("body")) for m in replies] == [
        ("c/a", "unsubscribed"),
        ("c/b", "unsubscribed"),
    ]
    assert session.subscriptions == {}


def test_ping_is_answered_with_its_nonce() -> None:
    message = bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=42)).SerializeToString()
    assert new_session().receive(message, 0, CHANNELS) == [AnswerPing(42)]


def test_burst_over_twice_the_rate_closes_with_1008() -> None:
    session = new_session(messages_per_second=5)
    ping = bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=1)).SerializeToString()
    for _ in range(10):
        session.receive(ping, 1.0, CHANNELS)
    with pytest.raises(RateLimited) as caught:
        session.receive(ping, 1.0, CHANNELS)
    assert caught.value.code is CloseCode.POLICY_VIOLATION


def test_sustained_rate_within_the_limit_is_accepted() -> None:
    session = new_session(messages_per_second=5)
    ping = bridge_pb2.ClientMessage(ping=bridge_pb2.Ping(nonce=1)).SerializeToString()
    for i in range(100):
        session.receive(ping, i * 0.2, CHANNELS)


def test_heartbeat_is_due_every_interval() -> None:
    session = new_session()
    assert not session.heartbeat_due(0.5)
    assert session.heartbeat_due(1.0)
    assert not session.heartbeat_due(1.5)
    assert session.heartbeat_due(2.0)


def test_phase_zero_brings_the_first_heartbeat_and_ping_at_half_their_interval() -> None:
    session = Session(BridgeConfig().limits(), TIMERS, 0, 0)
    assert not session.heartbeat_due(0.49)
    assert session.heartbeat_due(0.5)
    assert session.ping_due(0.99) is None
    assert session.ping_due(1.0) is not None


def test_after_the_first_heartbeat_the_phase_keeps_its_interval() -> None:
    session = Session(BridgeConfig().limits(), TIMERS, 0, 0)
    assert session.heartbeat_due(0.5)
    assert not session.heartbeat_due(1.4)
    assert session.heartbeat_due(1.5)


def test_ping_without_pong_expires_after_the_timeout() -> None:
    session = new_session()
    assert session.ping_due(1.0) is None
    payload = session.ping_due(2.0)
    assert payload is not None
    assert session.ping_due(3.0) is None
    assert not session.ping_expired(5.0)
    assert session.ping_expired(5.1)


def test_pong_with_the_ping_payload_clears_the_ping() -> None:
    session = new_session()
    payload = session.ping_due(2.0)
    assert payload is not None
    session.pong(b"other", 2.1)
    assert session.ping_sent_at is not None
    session.pong(payload, 2.2)
    assert not session.ping_expired(100)
    assert session.ping_due(4.2) is not None


def test_session_id_and_ping_payloads_come_from_the_injected_random_bytes() -> None:
    stream = iter(range(256))

    def counting_bytes(n: int) -> bytes:
        return bytes(next(stream) for _ in range(n))

    session = Session(BridgeConfig().limits(), TIMERS, 0, random_bytes=counting_bytes)
    assert session.id == "0001020304050607"
    assert session.ping_due(2.0) == bytes([8, 9, 10, 11])
