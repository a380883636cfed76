"""The client side of one bridge connection, without I/O.

Feed it every binary frame with `receive(data, now)`; it returns events and
queues ClientMessages that `data_to_send()` hands out. Its views and the set
of wanted channels outlive connections, so a reconnect resumes where the
previous connection stopped.

Rules (bridge.proto and docs/protocol.md are the contract):

- `connection_opened(now)` starts a connection; the bridge speaks first with
  Hello, then Catalog. Every wanted channel is subscribed in one Subscribe
  once Hello arrived, resuming from the view's position when it has one.
- Per channel: PENDING (Subscribe sent) → Subscribed{recovered} → LIVE, or
  Subscribed{not recovered} → AWAITING_SNAPSHOT → Snapshot → LIVE. A Snapshot
  replaces the view in any phase.
- LIVE: an Update that does not follow the view (metrics.proto: same epoch,
  seq + 1) is a gap the bridge never makes on purpose: the channel is
  resubscribed without resume, for a clean snapshot (back to PENDING), and
  GapDetected is emitted. Outside LIVE a non-following Update is dropped: the
  answer to our Subscribe is on its way. Already-applied Updates are ignored.
- A Heartbeat position ahead of a LIVE view (or of another epoch) is only a
  suspicion: a lagging client is owed a snapshot the bridge sends once its
  buffer drains. If the view has still not reached that position when the
  next Heartbeat arrives, data was missed: the channel is resubscribed with
  resume from the view's position (docs/protocol.md, "Heartbeats").
- Liveness: any frame counts. The link is dead once nothing arrived for
  `miss_factor` heartbeat intervals (2.5, docs/protocol.md), before Hello
  for `hello_timeout` seconds.
- Error UNKNOWN_CHANNEL leaves the channel wanted but unsubscribed: a bridge
  that just started, or whose collector has not yet announced the source,
  does not know it yet. It is subscribed again once a Catalog lists it.
- Error TOO_MANY_SUBSCRIPTIONS removes the channel from the wanted set:
  asking again would get the same answer.
- Subscribes queued in one `receive` go out as one ClientMessage, so a burst
  of gaps costs one message, not one per channel.
- A frame that does not decode raises ProtocolViolation.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from bridge.client.errors import ProtocolViolation
from bridge.client.state import Applied, ChannelView, ViewPosition
from metrics_bridge.v1 import bridge_pb2, metrics_pb2

PROTOCOL = "metrics-bridge.v1"


class Phase(enum.Enum):
    PENDING = "pending"
    AWAITING_SNAPSHOT = "awaiting-snapshot"
    LIVE = "live"


@dataclass(frozen=True)
class HelloReceived:
    hello: bridge_pb2.Hello


@dataclass(frozen=True)
class CatalogReceived:
    channels: tuple[bridge_pb2.ChannelInfo, ...]


@dataclass(frozen=True)
class ChannelSynced:
    """The view follows the bridge again: from a snapshot, or resumed gaplessly."""

    channel: str
    recovered: bool
    position: ViewPosition


@dataclass(frozen=True)
class ChannelUpdated:
    channel: str
    position: ViewPosition
    update: metrics_pb2.Update


@dataclass(frozen=True)
class GapDetected:
    channel: str
    position: ViewPosition | None
    reason: str


@dataclass(frozen=True)
class StatusChanged:
    channel: str
    state: bridge_pb2.UpstreamState.ValueType
    detail: str


@dataclass(frozen=True)
class ServerError:
    channel: str
    code: bridge_pb2.ErrorCode.ValueType
    message: str


@dataclass(frozen=True)
class HeartbeatReceived:
    server_time_ms: int


SessionEvent = (
    HelloReceived
    | CatalogReceived
    | ChannelSynced
    | ChannelUpdated
    | GapDetected
    | StatusChanged
    | ServerError
    | HeartbeatReceived
)

_FINAL_ERRORS = (bridge_pb2.ERROR_CODE_TOO_MANY_SUBSCRIPTIONS,)


class ClientSession:
    def __init__(
        self,
        channels: Iterable[str] = (),
        *,
        miss_factor: float = 2.5,
        hello_timeout: float = 10.0,
    ) -> None:
        self.miss_factor = miss_factor
        self.hello_timeout = hello_timeout
        self.views: dict[str, ChannelView] = {}
        self.phases: dict[str, Phase] = {}
        self.upstream: dict[str, bridge_pb2.UpstreamState.ValueType] = {}
        self.catalog: dict[str, bridge_pb2.ChannelInfo] = {}
        self.hello: bridge_pb2.Hello | None = None
        self._wanted: dict[str, None] = dict.fromkeys(channels)
        # channel -> whether to resume from the view's position
        self._to_subscribe: dict[str, bool] = {}
        # channel -> the position a heartbeat claimed the view should reach
        self._suspects: dict[str, metrics_pb2.Position] = {}
        self._outgoing: list[bytes] = []
        self._last_received = 0.0

    @property
    def wanted(self) -> list[str]:
        return list(self._wanted)

    def connection_opened(self, now: float) -> None:
        self.hello = None
        self.phases = {}
        self._to_subscribe = {}
        self._suspects = {}
        self._outgoing = []
        self._last_received = now

    def subscribe(self, channels: Iterable[str]) -> None:
        for channel in channels:
            self._wanted[channel] = None
            if self.hello is not None and channel not in self.phases:
                self._to_subscribe[channel] = True

    def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = [c for c in channels if c in self._wanted]
        for channel in gone:
            del self._wanted[channel]
            self._to_subscribe.pop(channel, None)
            self.views.pop(channel, None)
            self.phases.pop(channel, None)
        if gone and self.hello is not None:
            message = bridge_pb2.ClientMessage(unsubscribe=bridge_pb2.Unsubscribe(channels=gone))
            self._outgoing.append(message.SerializeToString())

    def link_deadline(self) -> float:
        """The time after which, with nothing received, the link counts as dead."""
        if self.hello is None:
            return self._last_received + self.hello_timeout
        if self.hello.heartbeat_interval_ms == 0:
            return math.inf
        return self._last_received + self.miss_factor * self.hello.heartbeat_interval_ms / 1000

    def data_to_send(self) -> list[bytes]:
        if self._to_subscribe:
            requests = []
            for channel, resume in self._to_subscribe.items():
                view = self.views.get(channel)
                position = view.position if view is not None and resume else None
                request = bridge_pb2.ChannelRequest(channel=channel)
                if position is not None:
                    request.resume.CopyFrom(position.to_proto())
                requests.append(request)
                self.phases[channel] = Phase.PENDING
            self._to_subscribe = {}
            message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=requests))
            self._outgoing.append(message.SerializeToString())
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def receive(self, data: bytes, now: float) -> list[SessionEvent]:
        self._last_received = now
        message = bridge_pb2.ServerMessage()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise ProtocolViolation(
                f"undecodable ServerMessage ({len(data)} bytes): {exc}"
            ) from exc
        body = message.WhichOneof("body")
        channel = message.channel
        if body == "hello":
            return self._on_hello(message.hello)
        if body == "catalog":
            return self._on_catalog(message.catalog)
        if body == "heartbeat":
            return self._on_heartbeat(message.heartbeat)
        if body == "pong":
            return []
        if body == "error":
            return self._on_error(channel, message.error)
        if channel not in self._wanted:
            return []
        if body == "subscribed":
            return self._on_subscribed(channel, message.subscribed)
        if body == "snapshot":
            return self._on_snapshot(channel, message.snapshot)
        if body == "update":
            return self._on_update(channel, message.update)
        if body == "status":
            self.upstream[channel] = message.status.state
            return [StatusChanged(channel, message.status.state, message.status.detail)]
        if body == "unsubscribed":
            self.phases.pop(channel, None)
            return []
        raise ProtocolViolation(f"ServerMessage without a known body ({body!r})")

    def _on_hello(self, hello: bridge_pb2.Hello) -> list[SessionEvent]:
        if hello.protocol and hello.protocol != PROTOCOL:
            raise ProtocolViolation(f"bridge speaks {hello.protocol!r}, not {PROTOCOL!r}")
        self.hello = hello
        self._to_subscribe = dict.fromkeys(self._wanted, True)
        return [HelloReceived(hello)]

    def _on_heartbeat(self, heartbeat: bridge_pb2.Heartbeat) -> list[SessionEvent]:
        events: list[SessionEvent] = [HeartbeatReceived(heartbeat.server_time_ms)]
        suspects, self._suspects = self._suspects, {}
        for channel, claimed in suspects.items():
            view = self.views.get(channel)
            live = view is not None and self.phases.get(channel) is Phase.LIVE
            if live and view is not None and view.is_behind(claimed):
                events.append(self._resync(channel, "heartbeat shows missed updates", True))
        for item in heartbeat.positions:
            view = self.views.get(item.channel)
            if (
                view is not None
                and self.phases.get(item.channel) is Phase.LIVE
                and view.is_behind(item.position)
            ):
                self._suspects[item.channel] = item.position
        return events

    def _on_catalog(self, catalog: bridge_pb2.Catalog) -> list[SessionEvent]:
        self.catalog = {info.channel: info for info in catalog.channels}
        if self.hello is not None:
            for channel in self.catalog:
                if channel in self._wanted and channel not in self.phases:
                    self._to_subscribe[channel] = True
        return [CatalogReceived(tuple(catalog.channels))]

    def _on_error(self, channel: str, error: bridge_pb2.Error) -> list[SessionEvent]:
        if channel and error.code == bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL:
            self.phases.pop(channel, None)
        elif channel and error.code in _FINAL_ERRORS:
            self._wanted.pop(channel, None)
            self.phases.pop(channel, None)
        return [ServerError(channel, error.code, error.message)]

    def _on_subscribed(self, channel: str, subscribed: bridge_pb2.Subscribed) -> list[SessionEvent]:
        view = self.views.get(channel)
        if subscribed.recovered and view is not None and view.position is not None:
            self.phases[channel] = Phase.LIVE
            return [ChannelSynced(channel, True, view.position)]
        self.phases[channel] = Phase.AWAITING_SNAPSHOT
        return []

    def _on_snapshot(self, channel: str, snapshot: metrics_pb2.Snapshot) -> list[SessionEvent]:
        view = self.views.setdefault(channel, ChannelView(channel))
        view.apply_snapshot(snapshot)
        self._suspects.pop(channel, None)
        self.phases[channel] = Phase.LIVE
        assert view.position is not None
        return [ChannelSynced(channel, False, view.position)]

    def _on_update(self, channel: str, update: metrics_pb2.Update) -> list[SessionEvent]:
        view = self.views.get(channel)
        phase = self.phases.get(channel)
        if view is None or phase is Phase.AWAITING_SNAPSHOT:
            return []
        outcome = view.apply_update(update)
        if outcome is Applied.APPLIED:
            assert view.position is not None
            return [ChannelUpdated(channel, view.position, update)]
        if outcome is Applied.GAP and phase is Phase.LIVE:
            return [self._resync(channel, f"update {update.seq} does not follow the view", False)]
        return []

    def _resync(self, channel: str, reason: str, resume: bool) -> GapDetected:
        self.phases[channel] = Phase.PENDING
        self._suspects.pop(channel, None)
        self._to_subscribe[channel] = resume
        return GapDetected(channel, self.views[channel].position, reason)
