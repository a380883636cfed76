"""One client's protocol session, without sockets or clocks.

Rules:
- Every client message is one binary frame holding one `ClientMessage`. A text
  frame closes the connection with 1003, bytes that do not parse with 1007
  (`ClientError` subclasses carry the code and reason).
- Messages are rate limited by a token bucket: `messages_per_second`
  sustained, bursts of twice that; over it the connection closes with 1008.
- Subscribe: each channel is checked on its own. An unknown channel, or one
  past `max_subscriptions`, gets an `Error` frame naming the channel and the
  rest of the request goes on; the connection stays open. Subscribing to a
  channel already subscribed restarts it (the client gets a fresh ack and a
  snapshot or the recovered updates), so re-subscribing with resume is how a
  client changes its rate or asks for history. `history` and
  `min_interval_ms` pass through to the hub, which decides what they give.
  A message with no body, or a Subscribe naming no channel, gets an `Error`
  with ERROR_CODE_BAD_REQUEST.
- Unsubscribe is idempotent and always acknowledged with `Unsubscribed`.
- Ping gets a Pong with the same nonce and the server time.
- Tokens (`token_required`, bridge/auth.py decides what a token grants): the
  first message must be Connect{token}, within `token_timeout` of the
  connection opening; anything else first closes with 4500 (`TokenRequired`).
  Until a token is accepted (`accept`) nothing else is sent: no Hello, no
  heartbeat. Refresh{token} later replaces the grant; a second Connect gets
  BAD_REQUEST. Without `token_required`, Connect and Refresh are ignored, so
  a client may always send its token.
- A channel outside the grant's `channels` gets exactly the error an unknown
  channel gets, so a client learns nothing about channels it may not see.
- Timers: a heartbeat is due every `heartbeat_interval`; a WebSocket ping is
  due every `ping_interval`, and a ping without a pong for `ping_timeout`
  means the peer is dead. The first of each comes after a share of its
  interval set by `phase` (half the interval at phase 0, all of it at 1), so
  clients that connected together (a reconnect storm) do not get their
  heartbeats and pings, nor send their pongs, all in the same moment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from bridge.auth import Grant
from bridge.channel import Position
from bridge.errors import MalformedMessage, RateLimited, TextFrame, TokenRequired
from metrics_bridge.v1 import bridge_pb2

__all__ = [
    "Action",
    "AnswerPing",
    "Authenticate",
    "Limits",
    "NotGranted",
    "Reply",
    "Session",
    "SubscribeChannel",
    "Timers",
    "UnsubscribeChannel",
    "error_reply",
]

ErrorCode = bridge_pb2.ErrorCode


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may do; built by `BridgeConfig.limits()`, which holds the defaults."""

    max_message_bytes: int
    max_subscriptions: int
    resume_window: int
    messages_per_second: float
    history_window: int = 0
    rate_tiers_ms: tuple[int, ...] = ()

    def to_proto(self) -> bridge_pb2.Limits:
        return bridge_pb2.Limits(
            max_message_bytes=self.max_message_bytes,
            max_subscriptions=self.max_subscriptions,
            resume_window=self.resume_window,
            max_client_messages_per_second=int(self.messages_per_second),
            history_window=self.history_window,
            rate_tiers_ms=self.rate_tiers_ms,
        )


@dataclass(frozen=True, slots=True)
class Timers:
    """A client's heartbeat and ping timers; built by `BridgeConfig.timers()`."""

    heartbeat_interval: float
    ping_interval: float
    ping_timeout: float


@dataclass(frozen=True, slots=True)
class SubscribeChannel:
    channel: str
    resume: Position | None
    history: bool = False
    min_interval_ms: int = 0


@dataclass(frozen=True, slots=True)
class UnsubscribeChannel:
    channel: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A connection-level message for this client only."""

    message: bridge_pb2.ServerMessage


@dataclass(frozen=True, slots=True)
class AnswerPing:
    """Send a Pong with this nonce and the server's wall-clock time."""

    nonce: int


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Verify this token: Connect (`first`) or Refresh."""

    token: str
    first: bool


@dataclass(frozen=True, slots=True)
class NotGranted:
    """A Subscribe named a channel outside the token's grant; answered as an unknown channel."""

    channel: str


Action = SubscribeChannel | UnsubscribeChannel | Reply | AnswerPing | Authenticate | NotGranted


def error_reply(code: int, message: str, channel: str = "") -> Reply:
    return Reply(
        bridge_pb2.ServerMessage(
            channel=channel,
            error=bridge_pb2.Error(code=code, message=message),  # type: ignore[arg-type]
        )
    )


OPEN_GRANT = Grant()
"""The grant of every session when no token is required (shared: Grant is frozen)."""


class Session:
    """Validates one client's messages and keeps its subscriptions and timers."""

    __slots__ = (
        "_random_bytes",
        "_tokens",
        "_tokens_at",
        "grant",
        "id",
        "limits",
        "next_heartbeat",
        "next_ping",
        "ping_payload",
        "ping_sent_at",
        "subscriptions",
        "timers",
        "token_deadline",
        "token_required",
    )

    def __init__(
        self,
        limits: Limits,
        timers: Timers,
        now: float,
        phase: float = 1.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
        token_required: bool = False,
        token_timeout: float = 10.0,
    ) -> None:
        self._random_bytes = random_bytes
        self.token_required = token_required
        self.grant: Grant | None = None if token_required else OPEN_GRANT
        self.token_deadline = now + token_timeout
        self.id = random_bytes(8).hex()
        self.limits = limits
        self.timers = timers
        self.subscriptions: dict[str, None] = {}
        self._tokens = 2 * limits.messages_per_second
        self._tokens_at = now
        share = 0.5 + min(1.0, max(0.0, phase)) / 2
        self.next_heartbeat = now + timers.heartbeat_interval * share
        self.next_ping = now + timers.ping_interval * share
        self.ping_sent_at: float | None = None
        self.ping_payload = b""

    def receive(self, data: bytes | str, now: float, channels: Container[str]) -> list[Action]:
        """Actions for one client message; raises ClientError to close the connection."""
        if isinstance(data, str):
            raise TextFrame("text frames are not supported: send binary ClientMessage frames")
        self._take_token(now)
        message = bridge_pb2.ClientMessage()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise MalformedMessage(f"not a ClientMessage: {exc}") from None
        body = message.WhichOneof("body")
        if body in ("connect", "refresh"):
            return self._token(body, message)
        if self.grant is None:
            raise TokenRequired("the first message must be Connect{token}")
        if body == "subscribe":
            return self._subscribe(message.subscribe, channels)
        if body == "unsubscribe":
            return self._unsubscribe(message.unsubscribe)
        if body == "ping":
            return [AnswerPing(message.ping.nonce)]
        return [error_reply(ErrorCode.ERROR_CODE_BAD_REQUEST, "empty or unknown ClientMessage")]

    def _token(self, body: str, message: bridge_pb2.ClientMessage) -> list[Action]:
        if not self.token_required:
            return []
        first = self.grant is None
        if body == "connect":
            if not first:
                return [error_reply(ErrorCode.ERROR_CODE_BAD_REQUEST, "already connected")]
            return [Authenticate(message.connect.token, True)]
        if first:
            raise TokenRequired("the first message must be Connect{token}")
        return [Authenticate(message.refresh.token, False)]

    def accept(self, grant: Grant) -> list[str]:
        """Take a verified grant; returns the subscriptions it no longer allows (ended)."""
        self.grant = grant
        lost = [name for name in self.subscriptions if not grant.allows(name)]
        for name in lost:
            del self.subscriptions[name]
        return lost

    def token_overdue(self, now: float) -> bool:
        return self.grant is None and now >= self.token_deadline

    def _take_token(self, now: float) -> None:
        rate = self.limits.messages_per_second
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(2 * rate, self._tokens + elapsed * rate)
        self._tokens_at = now
        if self._tokens < 1:
            raise RateLimited(f"over {rate:g} client messages per second")
        self._tokens -= 1

    def _subscribe(self, request: bridge_pb2.Subscribe, channels: Container[str]) -> list[Action]:
        if not request.channels:
            return [error_reply(ErrorCode.ERROR_CODE_BAD_REQUEST, "Subscribe names no channel")]
        actions: list[Action] = []
        grant = self.grant or Grant()
        for item in request.channels:
            name = item.channel
            if name in channels and not grant.allows(name):
                actions.append(NotGranted(name))
                continue
            if name not in channels:
                actions.append(
                    error_reply(ErrorCode.ERROR_CODE_UNKNOWN_CHANNEL, "unknown channel", name)
                )
                continue
            if (
                name not in self.subscriptions
                and len(self.subscriptions) >= self.limits.max_subscriptions
            ):
                actions.append(
                    error_reply(
                        ErrorCode.ERROR_CODE_TOO_MANY_SUBSCRIPTIONS,
                        f"at most {self.limits.max_subscriptions} subscriptions per connection",
                        name,
                    )
                )
                continue
            self.subscriptions[name] = None
            resume = (
                Position(item.resume.epoch, item.resume.seq) if item.HasField("resume") else None
            )
            actions.append(SubscribeChannel(name, resume, item.history, item.min_interval_ms))
        return actions

    def _unsubscribe(self, request: bridge_pb2.Unsubscribe) -> list[Action]:
        actions: list[Action] = []
        for name in request.channels:
            self.subscriptions.pop(name, None)
            actions.append(UnsubscribeChannel(name))
            actions.append(
                Reply(
                    bridge_pb2.ServerMessage(channel=name, unsubscribed=bridge_pb2.Unsubscribed())
                )
            )
        if not actions:
            return [error_reply(ErrorCode.ERROR_CODE_BAD_REQUEST, "Unsubscribe names no channel")]
        return actions

    def drop(self, channel: str) -> None:
        """The channel is gone (source removed); it no longer counts as a subscription."""
        self.subscriptions.pop(channel, None)

    def heartbeat_due(self, now: float) -> bool:
        if now < self.next_heartbeat or self.grant is None:
            return False
        interval = self.timers.heartbeat_interval
        self.next_heartbeat = max(self.next_heartbeat + interval, now + interval / 2)
        return True

    def ping_due(self, now: float) -> bytes | None:
        """A payload to send in a WebSocket ping, when one is due."""
        if self.ping_sent_at is not None or now < self.next_ping:
            return None
        self.ping_sent_at = now
        self.ping_payload = self._random_bytes(4)
        return self.ping_payload

    def pong(self, payload: bytes, now: float) -> None:
        if self.ping_sent_at is not None and payload == self.ping_payload:
            self.ping_sent_at = None
            self.next_ping = now + self.timers.ping_interval

    def ping_expired(self, now: float) -> bool:
        return self.ping_sent_at is not None and now - self.ping_sent_at > self.timers.ping_timeout
