"""The fan-out core: clients, their subscriptions, and who gets which frame.

Rules:
- Each channel (held by `ChannelRegistry`) has a pool of subscribed clients.
  A channel message is encoded once (`Frame`) and the same bytes go to every
  client of the pool; there is no per-client encoding and no task per message.
- Every frame to a client passes its `OutboundBuffer`, which decides write,
  skip, resync (the channel's latest snapshot instead) or close; a slow client
  therefore never delays the others, and its memory stays bounded. With
  `ClientPolicy.max_staleness`, it also bounds by time what the buffer holds
  (from the drain rate measured on each tick), and a resync snapshot is marked
  with why (`ServerMessage.resync`: STALE or OVERFLOW). Skipped frames and
  resyncs are counted by reason in `Counters.drops`/`stage_resyncs`, stage
  "client"; `client_queue_ages()` estimates the age of what is queued.
- On connect a client gets Hello then Catalog; with tokens required
  (`access`, bridge/auth.py) only once its Connect{token} is accepted, and
  its Catalog lists only the channels its grant allows. A refused token
  closes with 4001 (expired: fetch a new one and reconnect) or 4501; no
  Connect within `token_timeout` closes with 4500. A grant whose `exp`
  passes without a Refresh closes with 4001. A Refresh swaps the grant in
  place: subscriptions it no longer allows end with an unknown-channel error.
  Every refusal is counted by reason in `Counters.refusals`.
- On subscribe it gets
  Subscribed(recovered, position, interval_ms, history), then the recovered
  updates, the history (the snapshot at the ring's start and every held
  update, when asked for and it fits the client's buffer, else the latest
  snapshot) or the latest snapshot (see `ChannelState.resume`), then a Status
  if the channel is not live.
- A subscription with a rate tier (bridge/tiers.py) is not in the channel's
  pool: the hub's tick sends it, once per tier interval, the channel's merged
  update from its position (encoded once per position). Status frames and
  removals reach pool and tier members alike.
- A Snapshot from upstream (resync or new epoch) goes to every subscriber.
  Upstream state changes reach subscribers as Status; a removed source gets
  Status REMOVED and its subscriptions end. Catalog changes are sent to every
  client on the next tick, at most once per tick.
- The hand-off, with the staleness bound on (`max_staleness` seconds; 0 =
  off, every event published as it is applied): events read off a stream
  are applied at once (state, ring and position stay exact), but their
  frames are held until `release_held`, after each drain pass of the stream
  reader, which publishes each held channel to its pool. A channel whose
  held events all waited at most `coalesce_after` (a hundredth of the
  bound)
  gets them one by one, as they came: a bridge that keeps up changes
  nothing. One that has fallen behind (an event waited longer) gets one
  frame, latest wins: the update merged from where the pool was (the net
  change), or the latest snapshot when the ring cannot bridge that; its
  drain passes then catch up instead of sending a queue of old steps. The
  merged frame is marked RESYNC_REASON_STALE when an event waited longer
  than `max_staleness`. Counted in `Counters.drops` as ("handoff", "stale")
  or ("handoff", "coalesced"), and `stage_resyncs` ("handoff", "stale") for
  the marked ones. Status frames are never held; rate-tier members are left
  to their tick. A snapshot the collector marked is counted as
  ("collector", its reason), with the updates it replaced.
- Hop delays (`hops`, bridge/hops.py) are observed per event; each
  channel's `delivered_ages` is the age of its newest data when published.
- `tick(now)` runs each client's timers, in this order: close it if its pong
  is overdue or it stayed behind too long, measure its drain rate, the new
  catalog, owed resyncs, the heartbeat, the WebSocket ping.
- Counters are plain ints in `Counters`, for an operations endpoint.
The hub never blocks and does no I/O itself: it writes to `Sink`s.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bridge.auth import Access, Grant, OpenAccess, TokenRefused
from bridge.channel import ChannelState, Position, State
from bridge.errors import (
    AtCapacity,
    ClientError,
    CloseCode,
    PingTimeout,
    SlowConsumer,
    TokenExpired,
    TokenInvalid,
    TokenRequired,
)
from bridge.frame import Frame, FrameKind, control_frame, with_resync
from bridge.history import HistoryLimits
from bridge.hops import HopDelays
from bridge.outbound import BUDGET_FLOOR, OVERFLOW, STALE, Admit, OutboundBuffer
from bridge.registry import ChannelRegistry, Published, Removed, Resync
from bridge.session import (
    AnswerPing,
    Authenticate,
    Limits,
    NotGranted,
    Reply,
    Session,
    SubscribeChannel,
    Timers,
    UnsubscribeChannel,
    error_reply,
)
from bridge.tiers import TierSchedule, pick_tier
from metrics_bridge.v1 import bridge_pb2

__all__ = ["PROTOCOL", "Client", "ClientPolicy", "Counters", "Hub", "Sink", "wall_clock_ms"]

log = logging.getLogger(__name__)

PROTOCOL = "metrics-bridge.v1"
UpstreamState = bridge_pb2.UpstreamState


class Sink(Protocol):
    """One client connection, as the hub sees it.

    A sink may also have `queued_total: int`, every byte it was ever given to
    send (`ConnectionSink` has); without it the client has no drain rate and
    only the byte limit bounds its buffer.
    """

    def buffered(self) -> int:
        """Bytes written but not yet sent."""
        ...

    def write(self, frame: Frame) -> int:
        """Queue the frame; returns the bytes it takes on this connection's wire."""
        ...

    def ping(self, payload: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the hub has already forgotten the client."""
        ...


@dataclass
class Counters:
    """Monotonic totals since start, for /metrics."""

    connections_accepted: int = 0
    connections_rejected_capacity: int = 0
    connections_closed: int = 0
    client_errors: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    updates_skipped: int = 0
    resyncs: int = 0
    slow_client_closes: int = 0
    ping_timeouts: int = 0
    subscriptions: int = 0
    recoveries: int = 0
    recovery_misses: int = 0
    heartbeats_sent: int = 0
    upstream_events: int = 0
    upstream_gaps: int = 0
    # Bad data from collectors (each answered with a resync), by reason.
    upstream_resyncs: dict[str, int] = field(default_factory=dict)
    # Refused Origins, tokens and channels outside a grant, by reason.
    refusals: dict[str, int] = field(default_factory=dict)
    # Updates dropped for the latest state, by (stage, reason): stage is
    # "collector" (counted from the marked snapshots it sends), "handoff" (the
    # bridge's upstream queue) or "client" (one client's outbound buffer);
    # reason is "stale" (past --max-staleness) or "overflow" (a size bound).
    drops: dict[tuple[str, str], int] = field(default_factory=dict)
    # Resync snapshots or merged updates sent for those drops, by (stage, reason).
    stage_resyncs: dict[tuple[str, str], int] = field(default_factory=dict)

    def refused(self, reason: str) -> None:
        self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def dropped(self, stage: str, reason: str, updates: int = 1) -> None:
        key = (stage, reason)
        self.drops[key] = self.drops.get(key, 0) + updates

    def resynced(self, stage: str, reason: str) -> None:
        key = (stage, reason)
        self.stage_resyncs[key] = self.stage_resyncs.get(key, 0) + 1


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """Outbound buffer bytes, staleness and lag allowed per client (see bridge/outbound.py);
    built by `BridgeConfig.client_policy()`. `max_staleness` 0 turns the time bound off."""

    buffer_bytes: int
    slow_timeout: float
    max_staleness: float = 0.0
    budget_floor: int = BUDGET_FLOOR

    def outbound(self) -> OutboundBuffer:
        return OutboundBuffer(
            self.buffer_bytes, self.slow_timeout, self.max_staleness, self.budget_floor
        )


class Client:
    """A connected client: its session, outbound policy and sink."""

    __slots__ = ("outbound", "session", "sink")

    def __init__(self, session: Session, outbound: OutboundBuffer, sink: Sink) -> None:
        self.session = session
        self.outbound = outbound
        self.sink = sink


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


RESYNC_REASONS: dict[int, str] = {STALE: "stale", OVERFLOW: "overflow"}
"""The /metrics label of each ResyncReason."""


@dataclass(slots=True)
class _Held:
    """A channel whose frames wait for `release_held`: where its pool was, and how many."""

    channel: ChannelState
    before: Position | None
    frames: list[Frame]
    waited: float
    """The longest any of them waited between being read and applied (seconds)."""
    mark: int
    """The ResyncReason the collector marked the first held snapshot with (0: none)."""


class Hub:
    """Channels and the clients subscribed to them."""

    def __init__(
        self,
        *,
        limits: Limits,
        timers: Timers,
        policy: ClientPolicy,
        max_connections: int,
        server_version: str,
        wall_ms: Callable[[], int] = wall_clock_ms,
        phase: Callable[[], float] = random.random,
        random_bytes: Callable[[int], bytes] = os.urandom,
        access: Access | None = None,
        token_timeout: float = 10.0,
        history: HistoryLimits | None = None,
    ) -> None:
        self.access: Access = access or OpenAccess()
        self.hops = HopDelays()
        self.delivered_ages: dict[str, float] = {}
        """Per channel: how old its newest data was when published to its pool (seconds)."""
        self._held: dict[str, _Held] = {}
        self.token_timeout = token_timeout
        self._filtered_catalogs: dict[tuple[str, ...], tuple[Frame, Frame]] = {}
        self.limits = limits
        self.timers = timers
        self.policy = policy
        self.max_connections = max_connections
        self.server_version = server_version
        self.wall_ms = wall_ms
        self.phase = phase
        self.random_bytes = random_bytes
        window = max(limits.resume_window, limits.history_window)
        self.registry = ChannelRegistry(history or HistoryLimits.unbounded(window))
        self.tiers: TierSchedule[Client] = TierSchedule(limits.rate_tiers_ms, 0.0)
        self.pools: dict[str, dict[Client, None]] = {}
        self.clients: dict[Client, None] = {}
        self.counters = Counters()
        self.resyncs_wanted: deque[Resync] = deque()
        self.on_resync_wanted: Callable[[], None] | None = None

    # Clients

    def connect(self, sink: Sink, now: float) -> Client:
        """Register a client and greet it; raises AtCapacity over max_connections."""
        if len(self.clients) >= self.max_connections:
            self.counters.connections_rejected_capacity += 1
            raise AtCapacity(f"at capacity ({self.max_connections} connections): retry later")
        session = Session(
            self.limits,
            self.timers,
            now,
            self.phase(),
            self.random_bytes,
            token_required=self.access.required,
            token_timeout=self.token_timeout,
        )
        client = Client(session, self.policy.outbound(), sink)
        self.clients[client] = None
        self.counters.connections_accepted += 1
        if session.grant is not None:
            self._greet(client, now)
        return client

    def _greet(self, client: Client, now: float) -> None:
        hello = bridge_pb2.Hello(
            session_id=client.session.id,
            server_version=self.server_version,
            protocol=PROTOCOL,
            heartbeat_interval_ms=int(self.timers.heartbeat_interval * 1000),
            limits=self.limits.to_proto(),
        )
        self._deliver(client, control_frame(bridge_pb2.ServerMessage(hello=hello)), now)
        self._deliver(client, self.catalog_for(client.session.grant), now)

    def disconnect(self, client: Client) -> None:
        """Forget a client whose connection ended; idempotent."""
        if client not in self.clients:
            return
        del self.clients[client]
        self.counters.connections_closed += 1
        for name in client.session.subscriptions:
            pool = self.pools.get(name)
            if pool is not None:
                pool.pop(client, None)
            self.tiers.leave(client, name)

    def close(self, client: Client, error: ClientError) -> None:
        """Forget a client and close its connection with the error's code."""
        if client not in self.clients:
            return
        self.disconnect(client)
        log.info("closing client %s: %d %s", client.session.id, error.code, error.reason)
        if error.code is CloseCode.SLOW_CONSUMER:
            self.counters.slow_client_closes += 1
        elif error.code is not CloseCode.GOING_AWAY:
            self.counters.client_errors += 1
        client.sink.close(error.code, error.reason)

    def receive(self, client: Client, data: bytes | str, now: float) -> None:
        """Handle one client message; a ClientError closes only that client."""
        try:
            actions = client.session.receive(data, now, self.channels)
        except ClientError as error:
            if isinstance(error, TokenRequired):
                self.counters.refused("missing_token")
            self.close(client, error)
            return
        for action in actions:
            if client not in self.clients:
                return  # closed by an earlier action (e.g. its buffer overflowed)
            if isinstance(action, SubscribeChannel):
                self._subscribe(client, action, now)
            elif isinstance(action, UnsubscribeChannel):
                self._unsubscribe(client, action.channel)
            elif isinstance(action, AnswerPing):
                pong = bridge_pb2.Pong(nonce=action.nonce, server_time_ms=self.wall_ms())
                self._deliver(client, control_frame(bridge_pb2.ServerMessage(pong=pong)), now)
            elif isinstance(action, Reply):
                self._deliver(client, control_frame(action.message), now)
            elif isinstance(action, NotGranted):
                self.counters.refused("channel_not_granted")
                reply = error_reply(
                    bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL, "unknown channel", action.channel
                )
                self._deliver(client, control_frame(reply.message), now)
            elif isinstance(action, Authenticate):
                self._authenticate(client, action, now)
                if client not in self.clients:
                    return

    def _authenticate(self, client: Client, action: Authenticate, now: float) -> None:
        try:
            grant = self.access.verify(action.token)
        except TokenRefused as refusal:
            self.counters.refused(refusal.reason)
            error = TokenExpired if refusal.retry else TokenInvalid
            self.close(client, error(refusal.message))
            return
        session = client.session
        before = session.grant
        lost = session.accept(grant)
        if action.first:
            self._greet(client, now)
            return
        for name in lost:
            self._unsubscribe(client, name)
            reply = error_reply(bridge_pb2.ERROR_CODE_UNKNOWN_CHANNEL, "unknown channel", name)
            self._deliver(client, control_frame(reply.message), now)
        if before is None or before.channels != grant.channels:
            self._deliver(client, self.catalog_for(grant), now)

    def pong(self, client: Client, payload: bytes, now: float) -> None:
        client.session.pong(payload, now)

    def _subscribe(self, client: Client, action: SubscribeChannel, now: float) -> None:
        name, resume = action.channel, action.resume
        channel = self.channels[name]
        tier = pick_tier(self.limits.rate_tiers_ms, action.min_interval_ms)
        pool = self.pools.setdefault(name, {})
        if tier:
            pool.pop(client, None)
        else:
            pool[client] = None
        client.outbound.settle(name)
        self.counters.subscriptions += 1
        decision = channel.resume(resume, action.history)
        if decision.history and not self._fits(client, decision.frames):
            decision = channel.resume(None)
        self.tiers.join(client, name, tier, decision.position)
        if resume is not None:
            if decision.recovered:
                self.counters.recoveries += 1
            else:
                self.counters.recovery_misses += 1
        ack = bridge_pb2.Subscribed(
            recovered=decision.recovered,
            position=decision.position.to_proto(),
            interval_ms=tier,
            history=decision.history,
        )
        self._deliver(
            client, control_frame(bridge_pb2.ServerMessage(channel=name, subscribed=ack)), now
        )
        for frame in decision.frames:
            self._deliver(client, frame, now)
        if channel.state != UpstreamState.UPSTREAM_STATE_LIVE:
            self._deliver(client, self._status_frame(channel), now)

    def _fits(self, client: Client, frames: tuple[Frame, ...]) -> bool:
        """Whether a history fits the client's outbound buffer as it is now."""
        buffered = client.sink.buffered()
        size = sum(len(frame) for frame in frames)
        return buffered == 0 or buffered + size <= client.outbound.limit

    def _unsubscribe(self, client: Client, name: str) -> None:
        pool = self.pools.get(name)
        if pool is not None:
            pool.pop(client, None)
        self.tiers.leave(client, name)
        client.outbound.settle(name)

    # Delivery

    def _deliver(self, client: Client, frame: Frame, now: float) -> None:
        self._act(client, frame, client.outbound.admit(frame, client.sink.buffered(), now))

    def _act(self, client: Client, frame: Frame, decision: Admit) -> None:
        if decision is Admit.WRITE:
            self._write(client, frame)
        elif decision is Admit.SKIP:
            self.counters.updates_skipped += 1
            reason = client.outbound.owed_reason(frame.channel)
            self.counters.dropped("client", RESYNC_REASONS[reason])
        elif decision is Admit.RESYNC:
            self._resync(client, frame.channel)
        else:
            self.close(client, SlowConsumer("outbound buffer over its hard limit"))

    def _write(self, client: Client, frame: Frame) -> None:
        self.counters.bytes_sent += client.sink.write(frame)
        self.counters.frames_sent += 1

    def _resync(self, client: Client, name: str) -> None:
        channel = self.channels.get(name)
        reason = client.outbound.settle(name)
        if channel is not None:
            self._write(client, channel.resync_frame(reason))
            self.tiers.moved(client, name, channel.position)
            self.counters.resyncs += 1
            self.counters.resynced("client", RESYNC_REASONS[reason])

    def publish(self, frame: Frame, now: float) -> None:
        """Offer one channel frame to every client of its pool."""
        pool = self.pools.get(frame.channel)
        if not pool:
            return
        admit = OutboundBuffer.admit
        sent = 0
        sent_bytes = 0
        refused: list[tuple[Client, Admit]] = []
        for client in pool:
            decision = admit(client.outbound, frame, client.sink.buffered(), now)
            if decision is Admit.WRITE:
                sent_bytes += client.sink.write(frame)
                sent += 1
            else:
                refused.append((client, decision))
        self.counters.frames_sent += sent
        self.counters.bytes_sent += sent_bytes
        for client, decision in refused:
            self._act(client, frame, decision)

    # Upstream

    @property
    def channels(self) -> dict[str, ChannelState]:
        return self.registry.channels

    def apply_event(
        self, collector: str, data: bytes, now: float, received: float | None = None
    ) -> None:
        """Take one raw CollectorEvent; bad data asks for a resync (`resyncs_wanted`).

        `received`: when it was read off the stream (the clock of `now`).
        With the staleness bound on, such an event is applied but its frames
        are held until `release_held`, which sends its channel once.
        """
        self.counters.upstream_events += 1
        waited = 0.0
        if received is not None:
            waited = now - received
            self.hops.handoff.observe(waited)
        outcome = self.registry.apply(collector, data)
        if isinstance(outcome, Published):
            channel = outcome.channel
            if outcome.resync:
                reason = RESYNC_REASONS.get(outcome.resync, "unknown")
                self.counters.dropped("collector", reason, outcome.skipped)
                self.counters.resynced("collector", reason)
            if received is not None and channel.time_unix_ms:
                read_ms = self.wall_ms() - waited * 1000
                self.hops.upstream.observe((read_ms - channel.time_unix_ms) / 1000)
            if outcome.revived:
                self._set_state(channel, UpstreamState.UPSTREAM_STATE_LIVE, "", now)
            if received is not None and self.policy.max_staleness > 0:
                held = self._held.get(channel.name)
                if held is not None and held.channel is not channel:
                    held = None  # a channel of that name that was removed meanwhile
                self._hold(outcome, held, waited)
                return
            self._delivered(channel)
            self.publish(outcome.frame, now)
            for frame in outcome.then:
                self.publish(frame, now)
        elif isinstance(outcome, Removed):
            self._held.pop(outcome.channel.name, None)
            self._end_subscriptions(outcome.channel, now)
        elif isinstance(outcome, Resync):
            self._want_resync(outcome)

    def _hold(self, outcome: Published, held: _Held | None, waited: float) -> None:
        """Keep back the frames of an event until the end of its drain pass."""
        frame = outcome.frame
        if held is None:
            before = None
            if frame.kind is FrameKind.UPDATE:
                before = Position(frame.epoch, frame.seq - 1)
            self._held[outcome.channel.name] = _Held(
                outcome.channel, before, [frame, *outcome.then], waited, outcome.resync
            )
        else:
            held.frames.append(frame)
            held.frames.extend(outcome.then)
            held.waited = max(held.waited, waited)

    @property
    def max_staleness(self) -> float:
        """The staleness bound (seconds, 0 = off): the client policy's, for the hand-off too."""
        return self.policy.max_staleness

    @property
    def coalesce_after(self) -> float:
        """How long an event may wait at the hand-off before its channel's held events merge."""
        return self.max_staleness / 100

    def release_held(self, now: float) -> None:
        """Publish each held channel: one by one if the bridge kept up, else its latest state.

        Events that all waited at most `coalesce_after` go out as they came.
        Otherwise one frame goes out: the update merged from where the pool
        was (`merged_frame`) when the ring bridges it, else the latest
        snapshot; marked `RESYNC_REASON_STALE` and counted as a stale
        hand-off drop and resync if one waited past `max_staleness`, else
        counted as coalesced. A channel removed meanwhile, or with no pool,
        gets nothing.
        """
        if not self._held:
            return
        held, self._held = self._held, {}
        for name, record in held.items():
            channel = record.channel
            if self.channels.get(name) is not channel or not self.pools.get(name):
                continue
            self._delivered(channel)
            count = len(record.frames)
            if count == 1 or record.waited <= self.coalesce_after:
                for frame in record.frames:
                    self.publish(frame, now)
                continue
            stale = record.waited > self.max_staleness
            reason = "stale" if stale else "coalesced"
            merged = None if record.before is None else channel.merged_frame(record.before)
            if merged is not None:
                frame = with_resync(merged, STALE) if stale else merged
                self.counters.dropped("handoff", reason, count - 1)
            else:
                mark = STALE if stale else record.mark
                frame = channel.resync_frame(mark) if mark else channel.snapshot_frame()
                # A held snapshot first replaced no update of the pool's.
                replaced = count if record.before is not None else count - 1
                self.counters.dropped("handoff", reason, replaced)
            if stale:
                self.counters.resynced("handoff", "stale")
            self.publish(frame, now)

    def _delivered(self, channel: ChannelState) -> None:
        if channel.time_unix_ms and self.pools.get(channel.name):
            age = (self.wall_ms() - channel.time_unix_ms) / 1000
            self.delivered_ages[channel.name] = age

    def _want_resync(self, resync: Resync) -> None:
        """Count, log and queue a resync; the server fetches it (bridge/channel_resync.py)."""
        counts = self.counters.upstream_resyncs
        counts[resync.reason] = counts.get(resync.reason, 0) + 1
        if resync.reason in ("seq_jump", "epoch_changed", "unknown_channel"):
            self.counters.upstream_gaps += 1
        what = "skipped" if resync.sources == () else "resyncing from its snapshot"
        log.warning(
            "collector %s sent bad data (%s): %s; %s",
            resync.collector,
            resync.reason,
            resync.detail,
            what,
        )
        if resync.sources != ():
            self.resyncs_wanted.append(resync)
            if self.on_resync_wanted is not None:
                self.on_resync_wanted()

    def positions(self, collector: str) -> dict[str, Position]:
        """Resume positions, by source name, of this collector's channels."""
        return self.registry.positions(collector)

    def set_collector_state(self, collector: str, state: State, detail: str, now: float) -> None:
        for channel in self.registry.of_collector(collector):
            self._set_state(channel, state, detail, now)

    def retain_sources(self, collector: str, sources: set[str], now: float) -> None:
        """Remove this collector's channels whose source it no longer has."""
        for name in self.registry.lost_sources(collector, sources):
            self.remove_channel(name, now)

    def remove_channel(self, name: str, now: float) -> None:
        removed = self.registry.remove(name)
        self._held.pop(name, None)
        if removed is not None:
            self._end_subscriptions(removed.channel, now)

    def _subscribers(self, name: str) -> list[Client]:
        """Every client subscribed to the channel: full rate and rate tiers."""
        return [*self.pools.get(name, {}), *self.tiers.members(name)]

    def _end_subscriptions(self, channel: ChannelState, now: float) -> None:
        self.delivered_ages.pop(channel.name, None)
        status = self._status_frame(channel)
        clients = self._subscribers(channel.name)
        self.pools.pop(channel.name, None)
        for client in clients:
            self.tiers.leave(client, channel.name)
            client.session.drop(channel.name)
            client.outbound.settle(channel.name)
            self._deliver(client, status, now)

    def _set_state(self, channel: ChannelState, state: State, detail: str, now: float) -> None:
        if not self.registry.set_state(channel, state, detail):
            return
        status = self._status_frame(channel)
        for client in self._subscribers(channel.name):
            self._deliver(client, status, now)

    def _status_frame(self, channel: ChannelState) -> Frame:
        status = bridge_pb2.Status(state=channel.state, detail=channel.detail)
        return control_frame(bridge_pb2.ServerMessage(channel=channel.name, status=status))

    def catalog_frame(self) -> Frame:
        return self.registry.catalog_frame()

    def catalog_for(self, grant: Grant | None) -> Frame:
        """The catalog as this grant sees it: encoded once per set of patterns."""
        full = self.registry.catalog_frame()
        if grant is None or grant.channels is None:
            return full
        cached = self._filtered_catalogs.get(grant.channels)
        if cached is not None and cached[0] is full:
            return cached[1]
        catalog = bridge_pb2.Catalog(
            channels=[
                self.channels[name].info() for name in sorted(self.channels) if grant.allows(name)
            ],
            approximate=True,
        )
        frame = control_frame(bridge_pb2.ServerMessage(catalog=catalog))
        if len(self._filtered_catalogs) > 1024:
            self._filtered_catalogs.clear()
        self._filtered_catalogs[grant.channels] = (full, frame)
        return frame

    # Timers

    def tick(self, now: float) -> None:
        """Run every client's timers; call often (a few times per second)."""
        catalog = self.registry.take_change()
        heartbeats: dict[tuple[tuple[str, int], ...], Frame] = {}
        timed = self.policy.max_staleness > 0
        for client in list(self.clients):
            if self._close_if_dead(client, now):
                continue
            if timed:
                self._observe_drain(client, now)
            grant = client.session.grant
            if catalog is not None and grant is not None:
                self._deliver(client, self.catalog_for(grant), now)
            self._pay_owed_resyncs(client, now)
            self._heartbeat_if_due(client, heartbeats, now)
            self._ping_if_due(client, now)
        for tier in self.tiers.due(now):
            self._tick_tier(tier, now)

    def _tick_tier(self, tier: int, now: float) -> None:
        """Take every member of the tier to its channel's position with one frame."""
        channels = self.channels

        def position_of(name: str) -> Position | None:
            channel = channels.get(name)
            return None if channel is None else channel.position

        admit = OutboundBuffer.admit
        refused: list[tuple[Client, Frame, Admit]] = []
        for name, position, members in self.tiers.behind(tier, position_of):
            channel = channels[name]
            frame = channel.merged_frame(position) or channel.snapshot_frame()
            sent: list[Client] = []
            sent_bytes = 0
            for client in members:
                decision = admit(client.outbound, frame, client.sink.buffered(), now)
                if decision is Admit.WRITE:
                    sent_bytes += client.sink.write(frame)
                    sent.append(client)
                else:
                    refused.append((client, frame, decision))
            self.tiers.advance(tier, name, sent, channel.position)
            self.counters.frames_sent += len(sent)
            self.counters.bytes_sent += sent_bytes
        for client, frame, decision in refused:
            if client in self.clients:
                self._act(client, frame, decision)

    def _close_if_dead(self, client: Client, now: float) -> bool:
        """Close a client that missed its pong or stayed behind too long."""
        if client.session.ping_expired(now):
            self.counters.ping_timeouts += 1
            self.close(client, PingTimeout("no pong to the bridge's ping"))
            return True
        if client.outbound.expired(now):
            self.close(client, SlowConsumer("client did not read for too long: reconnect"))
            return True
        session = client.session
        if session.token_overdue(now):
            self.counters.refused("missing_token")
            self.close(client, TokenRequired(f"no Connect{{token}} within {self.token_timeout:g}s"))
            return True
        if session.grant is not None and session.grant.expired(self.wall_ms() / 1000):
            self.counters.refused("expired")
            self.close(client, TokenExpired("token expired: Refresh before exp, or reconnect"))
            return True
        return False

    def _observe_drain(self, client: Client, now: float) -> None:
        queued: int | None = getattr(client.sink, "queued_total", None)
        if queued is not None:
            client.outbound.observe(queued, client.sink.buffered(), now)

    def _pay_owed_resyncs(self, client: Client, now: float) -> None:
        """Marked snapshots for the channels a lagging client owes, once its buffer drained."""
        for name, reason in client.outbound.owed_resyncs(client.sink.buffered()):
            channel = self.channels.get(name)
            if channel is None:
                client.outbound.settle(name)
                continue
            self._deliver(client, channel.resync_frame(reason), now)
            if not client.outbound.is_owed(name):
                self.tiers.moved(client, name, channel.position)
                self.counters.resyncs += 1
                self.counters.resynced("client", RESYNC_REASONS[reason])

    def client_queue_ages(self) -> dict[str, float]:
        """Per channel: how old the oldest data queued for it in a client buffer is, estimated.

        A client's estimate is its buffered bytes over its measured drain
        rate (`OutboundBuffer.queue_age`): 0 for a client that has no rate
        (never backlogged over a tick, so it drains within one) or holds
        nothing, +inf for one that stopped reading. A channel's age is the
        largest over its subscribers, rate tiers included; 0 with none.
        """
        ages: dict[Client, float] = {}
        oldest: dict[str, float] = {}
        for name in self.channels:
            age = 0.0
            for client in self._subscribers(name):
                mine = ages.get(client)
                if mine is None:
                    mine = ages[client] = client.outbound.queue_age(client.sink.buffered())
                age = max(age, mine)
            oldest[name] = age
        return oldest

    def _heartbeat_if_due(
        self, client: Client, frames: dict[tuple[tuple[str, int], ...], Frame], now: float
    ) -> None:
        """A Heartbeat, encoded once per subscription set within one tick."""
        session = client.session
        if client not in self.clients or not session.heartbeat_due(now):
            return
        key = tuple((name, self.tiers.tier_of(client, name)) for name in session.subscriptions)
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = self._heartbeat_frame(key)
        self.counters.heartbeats_sent += 1
        self._deliver(client, frame, now)

    def _ping_if_due(self, client: Client, now: float) -> None:
        payload = client.session.ping_due(now)
        if payload is not None and client in self.clients:
            client.sink.ping(payload)

    def _heartbeat_frame(self, subscriptions: tuple[tuple[str, int], ...]) -> Frame:
        """Positions claimed: the channel's, or where its tier's last tick took members."""
        heartbeat = bridge_pb2.Heartbeat(server_time_ms=self.wall_ms())
        for name, tier in subscriptions:
            channel = self.channels.get(name)
            if channel is None:
                continue
            position = (tier and self.tiers.tick_position(tier, name)) or channel.position
            heartbeat.positions.add(channel=name, position=position.to_proto())
        return control_frame(bridge_pb2.ServerMessage(heartbeat=heartbeat))

    def close_all(self, code: int, reason: str) -> None:
        for client in list(self.clients):
            self.disconnect(client)
            client.sink.close(code, reason)
