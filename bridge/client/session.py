"""The client side of one bridge connection, without I/O.

Feed it every binary frame with `receive(data, now)`; it returns events and
queues ClientMessages that `data_to_send()` hands out. Its views and the set
of wanted channels outlive connections, so a reconnect resumes where the
previous connection stopped.

Rules (docs/protocol.md, "Client rules"; conformance/*.json are the same
rules as data, and tests/bridge/test_conformance.py runs them):

- `connection_opened(now)` starts a connection. With a `token`, the first
  message is Connect{token}, queued at once (a bridge with `--auth jwt`
  greets only after it; one without ignores it). The bridge speaks first
  otherwise, with Hello, then Catalog. `refresh(token)` replaces the token:
  sent as Refresh{token} once greeted, else kept for the next connection.
  A Hello must name `metrics-bridge.v1` and a heartbeat interval above 0,
  else it is a ProtocolViolation. On Hello every wanted channel is subscribed
  in one Subscribe, resuming from the view's position when it has one.
- Per channel and connection: PENDING (Subscribe sent) → Subscribed{recovered}
  → LIVE, or Subscribed{not recovered} → AWAITING_SNAPSHOT → Snapshot → LIVE.
  A Snapshot replaces the view in any phase. Frames for a channel not
  subscribed on this connection are ignored.
- LIVE: an Update that does not follow the view (metrics.proto: same epoch,
  seq + 1) is a gap: the channel is resubscribed resuming from the view's
  position (the bridge replays what is missing, or sends a snapshot) and
  GapDetected is emitted. An Update that follows but breaks the schema
  (undeclared ids, ragged values) is resubscribed without resume, for a fresh
  snapshot. Outside LIVE such Updates are dropped: the answer to our Subscribe
  is on its way. Already-applied Updates are ignored.
- A Heartbeat position ahead of a LIVE view (or of another epoch) is only a
  suspicion: a lagging client is owed a snapshot the bridge sends once its
  buffer drains. If the view has still not reached that position when the
  next Heartbeat arrives, data was missed: the channel is resubscribed with
  resume from the view's position.
- Liveness: any frame counts. The link is dead once nothing arrived for
  `miss_factor` heartbeat intervals (2.5), before Hello for `hello_timeout`
  seconds (`link_dead`).
- Status REMOVED ends the subscription at the bridge; Error UNKNOWN_CHANNEL
  refuses one. Either way the channel stays wanted and keeps its view, and is
  subscribed again once a Catalog lists it (a source that expired and was
  pushed again; a bridge that did not know the channel yet), and on the next
  connection.
- Any other Error naming a channel (TOO_MANY_SUBSCRIPTIONS, BAD_REQUEST, a
  code this client does not know) removes it from the wanted set: asking again
  would get the same answer.
- History and rate (`history`, `min_interval_ms`, per channel): every
  Subscribe of the channel asks for them. With history, a not-recovered
  subscription starts from the bridge's oldest held state (a Snapshot, then
  the held updates, applied as usual). With a rate, the bridge sends merged
  updates (`first_seq`), applied when the view is at first_seq - 1.
  `set_rate` re-subscribes a subscribed channel resuming from its view, so
  changing the rate costs no snapshot.
- Subscribes queued in one `receive` go out as one ClientMessage, so a burst
  of gaps costs one message, not one per channel.
- A Snapshot or merged Update marked with a resync reason (`resync`: the
  bridge or collector replaced stale or overflowing updates with it) applies
  like any other; the mark is only told: in the event (`resync`) and in the
  view's counts (`ChannelView.resyncs`, `last_resync`).
- A frame that does not decode raises ProtocolViolation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from bridge.client.errors import ProtocolViolation
from bridge.client.state import Applied, ChannelView, ViewPosition, resync_reason
from metrics_bridge.v1 import bridge_pb2, metrics_pb2

__all__ = [
    "PROTOCOL",
    "CatalogReceived",
    "ChannelSynced",
    "ChannelUpdated",
    "ClientSession",
    "GapDetected",
    "HeartbeatReceived",
    "HelloReceived",
    "Phase",
    "ServerError",
    "SessionEvent",
    "StatusChanged",
]

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
    """The view follows the bridge again: from a snapshot, or resumed gaplessly.

    `resync` names why the bridge sent this snapshot in place of updates
    ("stale", "overflow"); None for the answer to a subscribe or resume.
    """

    channel: str
    recovered: bool
    position: ViewPosition
    resync: str | None = None


@dataclass(frozen=True)
class ChannelUpdated:
    """An update applied; `resync` is set on a merged update sent in place of updates."""

    channel: str
    position: ViewPosition
    update: metrics_pb2.Update
    resync: str | None = None


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

# Errors naming a channel after which it is asked for again once a Catalog
# lists it; every other code naming a channel drops it from the wanted set.
_RETRIED_ERRORS = frozenset({bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL})


class ClientSession:
    def __init__(
        self,
        channels: Iterable[str] = (),
        *,
        miss_factor: float = 2.5,
        hello_timeout: float = 10.0,
        token: str | None = None,
        history: bool = False,
        min_interval_ms: int = 0,
    ) -> None:
        self.token = token
        self.history = history
        self.min_interval_ms = min_interval_ms
        # channel -> (history, min_interval_ms) where it differs from the defaults
        self._options: dict[str, tuple[bool, int]] = {}
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
        if self.token:
            connect = bridge_pb2.Connect(token=self.token)
            self._outgoing.append(bridge_pb2.ClientMessage(connect=connect).SerializeToString())

    def refresh(self, token: str) -> None:
        """A new token: sent in-band if greeted, else used by the next connection."""
        self.token = token
        if self.hello is not None:
            refresh = bridge_pb2.Refresh(token=token)
            self._outgoing.append(bridge_pb2.ClientMessage(refresh=refresh).SerializeToString())

    def subscribe(
        self,
        channels: Iterable[str],
        *,
        history: bool | None = None,
        min_interval_ms: int | None = None,
    ) -> None:
        for channel in channels:
            self._wanted[channel] = None
            if history is not None or min_interval_ms is not None:
                wants_history, interval = self.options(channel)
                self._options[channel] = (
                    wants_history if history is None else history,
                    interval if min_interval_ms is None else min_interval_ms,
                )
            if self.hello is not None and channel not in self.phases:
                self._to_subscribe[channel] = True

    def options(self, channel: str) -> tuple[bool, int]:
        """(history, min_interval_ms) this channel is subscribed with."""
        return self._options.get(channel, (self.history, self.min_interval_ms))

    def set_rate(self, channels: Iterable[str], min_interval_ms: int) -> None:
        """A new rate; a channel subscribed on this connection resubscribes with resume."""
        for channel in channels:
            if channel not in self._wanted:
                continue
            self._options[channel] = (self.options(channel)[0], min_interval_ms)
            if self.hello is not None and channel in self.phases:
                self._to_subscribe[channel] = True

    def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = [c for c in channels if c in self._wanted]
        for channel in gone:
            del self._wanted[channel]
            self._to_subscribe.pop(channel, None)
            self._options.pop(channel, None)
            self.views.pop(channel, None)
            self.phases.pop(channel, None)
        if gone and self.hello is not None:
            message = bridge_pb2.ClientMessage(unsubscribe=bridge_pb2.Unsubscribe(channels=gone))
            self._outgoing.append(message.SerializeToString())

    def link_deadline(self) -> float:
        """The time after which, with nothing received, the link counts as dead."""
        if self.hello is None:
            return self._last_received + self.hello_timeout
        return self._last_received + self.miss_factor * self.hello.heartbeat_interval_ms / 1000

    def link_dead(self, now: float) -> bool:
        """Whether nothing arrived for long enough that the link counts as dead."""
        return now >= self.link_deadline()

    def data_to_send(self) -> list[bytes]:
        if self._to_subscribe:
            requests = []
            for channel, resume in self._to_subscribe.items():
                view = self.views.get(channel)
                position = view.position if view is not None and resume else None
                history, interval = self.options(channel)
                request = bridge_pb2.ChannelRequest(
                    channel=channel, history=history, min_interval_ms=interval
                )
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
        if channel not in self.phases:
            return []  # not subscribed on this connection (or no longer)
        if body == "subscribed":
            return self._on_subscribed(channel, message.subscribed)
        if body == "snapshot":
            return self._on_snapshot(channel, message.snapshot, resync_reason(message.resync))
        if body == "update":
            return self._on_update(
                channel, message.update, message.first_seq, resync_reason(message.resync)
            )
        if body == "status":
            return self._on_status(channel, message.status)
        if body == "unsubscribed":
            return []  # `unsubscribe` already let the channel go
        raise ProtocolViolation(f"ServerMessage without a known body ({body!r})")

    def _on_hello(self, hello: bridge_pb2.Hello) -> list[SessionEvent]:
        if hello.protocol != PROTOCOL:
            raise ProtocolViolation(f"bridge speaks {hello.protocol!r}, not {PROTOCOL!r}")
        if hello.heartbeat_interval_ms == 0:
            raise ProtocolViolation("Hello without a heartbeat interval")
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
        for info in catalog.channels:
            self.upstream[info.channel] = info.state
        if self.hello is not None:
            for channel in self.catalog:
                if channel in self._wanted and channel not in self.phases:
                    self._to_subscribe[channel] = True
        return [CatalogReceived(tuple(catalog.channels))]

    def _on_status(self, channel: str, status: bridge_pb2.Status) -> list[SessionEvent]:
        self.upstream[channel] = status.state
        if status.state == bridge_pb2.UPSTREAM_STATE_REMOVED:
            self._end_subscription(channel)
        return [StatusChanged(channel, status.state, status.detail)]

    def _on_error(self, channel: str, error: bridge_pb2.Error) -> list[SessionEvent]:
        if channel:
            self._end_subscription(channel)
            if error.code not in _RETRIED_ERRORS:
                self._wanted.pop(channel, None)
        return [ServerError(channel, error.code, error.message)]

    def _end_subscription(self, channel: str) -> None:
        """The bridge no longer serves the channel on this connection; the view is kept."""
        self.phases.pop(channel, None)
        self._suspects.pop(channel, None)
        self._to_subscribe.pop(channel, None)

    def _on_subscribed(self, channel: str, subscribed: bridge_pb2.Subscribed) -> list[SessionEvent]:
        view = self.views.get(channel)
        if subscribed.recovered and view is not None and view.position is not None:
            self.phases[channel] = Phase.LIVE
            return [ChannelSynced(channel, True, view.position)]
        self.phases[channel] = Phase.AWAITING_SNAPSHOT
        return []

    def _on_snapshot(
        self, channel: str, snapshot: metrics_pb2.Snapshot, resync: str | None
    ) -> list[SessionEvent]:
        view = self.views.setdefault(channel, ChannelView(channel))
        view.apply_snapshot(snapshot, resync)
        self._suspects.pop(channel, None)
        self.phases[channel] = Phase.LIVE
        assert view.position is not None
        return [ChannelSynced(channel, False, view.position, resync)]

    def _on_update(
        self, channel: str, update: metrics_pb2.Update, first_seq: int, resync: str | None
    ) -> list[SessionEvent]:
        view = self.views.get(channel)
        phase = self.phases.get(channel)
        if view is None or phase is Phase.AWAITING_SNAPSHOT:
            return []
        outcome = view.apply_update(update, first_seq, resync)
        if outcome is Applied.APPLIED:
            assert view.position is not None
            return [ChannelUpdated(channel, view.position, update, resync)]
        if phase is not Phase.LIVE:
            return []
        if outcome is Applied.GAP:
            return [self._resync(channel, f"update {update.seq} does not follow the view", True)]
        if outcome is Applied.INVALID:
            return [self._resync(channel, f"update {update.seq} breaks the schema", False)]
        return []

    def _resync(self, channel: str, reason: str, resume: bool) -> GapDetected:
        self.phases[channel] = Phase.PENDING
        self._suspects.pop(channel, None)
        self._to_subscribe[channel] = resume
        return GapDetected(channel, self.views[channel].position, reason)
