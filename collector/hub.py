"""All sources of one collector and the subscribers following them. Pure.

Rules:
- A source is created by its first batch (host sampler, Push or OTLP) with a
  fresh random epoch; its kind is fixed then. A batch for an existing source of
  another kind raises `SourceConflict`. At most `max_sources` sources exist:
  a batch that would create one more raises `TooManySources`.
- Each update is encoded once by its `SourceState` and the same bytes are
  offered to every subscriber that wants the source (its compact form, also
  encoded once, to those that take deltas). While every subscriber takes
  deltas (bridges do), sources encode only the compact form
  (`SourceState.encode_plain` off: one encoding per update, not two); with
  no subscriber, or one that takes updates in full, they encode both, so a
  subscriber of either kind can resume across them. One in full that
  resumes across compact-only updates gets a snapshot.
- Subscribing: for each wanted source that exists, a resume position that the
  source can serve queues exactly the missing updates (if they fit the
  subscriber's queue; otherwise it overflows into a Resync); anything else
  queues a Resync (snapshot). A source created later is queued as a Resync to every
  subscriber that wants it (subscribers naming a source wait for it to appear).
- Replay on subscribe (`replay` updates, 0 = off): a source that would get
  that Resync gets instead the source's oldest checkpoint at most `replay`
  updates back (collector/source.py) and every update after it, queued in
  order as events stamped now (so the staleness bound counts from the
  subscribe); the subscriber holds those updates as if it had followed them.
  Replays take at most half the subscriber's queue, counting what is queued
  before them, so live updates do not overflow it; a source whose replay does
  not fit, or that has none, gets the Resync.
- `max_series_per_source` applies to pushed and OTLP sources; the host source
  is bounded by the sampler itself (collector.host caps mounts, disks, NICs).
- At most `max_subscribers` subscribers exist (`TooManySubscribers`).
- Idle expiry: every batch records when it was received (`received`, the
  caller's monotonic seconds). `expire(now)` removes each push or OTLP source
  whose last accepted batch (changed or not) is `source_ttl` seconds old or
  older; the host source never expires and `source_ttl` 0 disables expiry.
  Removal frees the source's place under `max_sources`, and every subscriber
  that wants the source gets one SourceRemoved{source, epoch} (encoded once).
  A later batch for that name creates a new source with a new epoch, announced
  by a snapshot like any new source; subscribers that named it keep waiting for
  it, and a resume position of the old epoch gets a snapshot, never a gap.
- Each instance of a source has an idle timer too (instances expire alone).
  At most `max_series_per_source` timers run per source: every instance that
  holds data owns a series, so past that the timers of instances that own
  none are dropped (a flood of empty exports with new instance ids cannot
  grow them for a whole `source_ttl`).
- Staleness: given a `clock` (monotonic seconds; the server passes
  time.monotonic), each update is stamped once when it is published (the
  updates of one `SourceFeed` share one reading: they are applied in one go)
  and every subscriber queue holds it at most `max_staleness` seconds while a
  newer one of its source waits; past that its source is resynced with a
  snapshot marked STALE (collector/fanout.py). Without a clock, or with `max_staleness` 0,
  there is no such bound.
- A snapshot sent for a Resync with a reason is marked with
  `CollectorEvent.resync` by appending that one field to the snapshot's shared
  encoding (concatenated messages merge), so marking costs a copy and the
  shared bytes stay unmarked for everyone else.
- `close()` ends every subscription (collector shutdown).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from collector.errors import (
    SourceConflict,
    TooManySources,
    TooManySubscribers,
    UnknownSource,
)
from collector.fanout import Event, ResyncReason, SubscriberQueue
from collector.series import SeriesSample
from collector.source import Position, SourceState, random_epoch
from metrics_bridge.v1 import collector_pb2, metrics_pb2

__all__ = [
    "EXPIRING_KINDS",
    "CollectorHub",
    "HubLimits",
    "RemovedSource",
    "SourceFeed",
    "with_resync",
]

EXPIRING_KINDS = frozenset({metrics_pb2.SOURCE_KIND_PUSH, metrics_pb2.SOURCE_KIND_OTLP})


@dataclass(frozen=True, slots=True)
class HubLimits:
    """The hub's bounds; built by `CollectorConfig.hub_limits()`, where the defaults live."""

    resume_window: int
    max_series_per_source: int
    max_sources: int
    subscriber_queue: int
    max_subscribers: int
    source_ttl: float
    """Seconds without an accepted batch before a push/OTLP source is removed; 0 = never."""
    max_staleness: float
    """Seconds a subscriber queue holds an update while a newer one waits; 0 = no bound."""


@dataclass(frozen=True, slots=True)
class RemovedSource:
    name: str
    kind: metrics_pb2.SourceKind.ValueType
    epoch: int
    idle_seconds: float
    instance: str | None = None
    """None: the whole source went; else only this instance's series did."""


def publish(
    subscribers: Sequence[SubscriberQueue], name: str, source: SourceState, now: float
) -> None:
    """Offer the source's latest update, stamped `now`: its compact form to the
    subscribers that take deltas, in full to the others (the compact one when
    it was the only one encoded, `source.latest` None)."""
    compact = source.compact
    update = source.latest
    compact_event = Event(name, compact, now)
    event = compact_event if update is None or update is compact else Event(name, update, now)
    for sub in subscribers:
        sub.offer_event(compact_event if sub.deltas else event)


class SourceFeed:
    """Batches for one source from one sender, applied back to back with nothing
    else running in between (one PushBatches message's worth).

    The source (created by the first batch if new), the subscribers that want
    it and the clock reading that stamps its updates are looked up once for
    all of them; `close` restarts the idle timers once, if a batch was
    accepted, and gives the source's position. Each batch is applied and
    published as `CollectorHub.apply` does, which is a feed of one batch; a
    batch that raises changes nothing, and those before it stay applied."""

    __slots__ = (
        "_hub",
        "_instance",
        "_kind",
        "_name",
        "_now",
        "_received",
        "_source",
        "_subscribers",
    )

    def __init__(
        self,
        hub: CollectorHub,
        name: str,
        kind: metrics_pb2.SourceKind.ValueType,
        received: float,
        instance: str,
    ) -> None:
        self._hub = hub
        self._name = name
        self._kind = kind
        self._received = received
        self._instance = instance
        self._source: SourceState | None = None
        self._subscribers: list[SubscriberQueue] = []
        self._now = 0.0

    def apply(
        self, samples: Sequence[SeriesSample], now_unix_ms: int, *, replace: bool = False
    ) -> None:
        """Fold a batch in and publish its update, if it changed anything."""
        source = self._source
        if source is None:
            hub = self._hub
            source = hub._bind(self._name, self._kind, samples)
            self._subscribers = hub._wanting(self._name)
            self._now = hub._now()
        changed = source.apply(samples, now_unix_ms, replace=replace, instance=self._instance)
        self._source = source  # a batch was accepted
        if changed is not None:
            publish(self._subscribers, self._name, source, self._now)

    def close(self) -> Position | None:
        """Restart the idle timers; the source's position (None if no batch was accepted)."""
        source = self._source
        if source is None:
            return None
        self._hub._received_batch(self._name, self._instance, self._received)
        return source.position


_RESYNC_TAG = b"\xa8\x01"  # CollectorEvent.resync = 21, varint


def with_resync(event: bytes, reason: ResyncReason) -> bytes:
    """The encoded CollectorEvent `event` with `resync` set to `reason` (0: as is)."""
    return event + _RESYNC_TAG + bytes([reason]) if reason else event


class CollectorHub:
    def __init__(
        self,
        limits: HubLimits,
        epochs: Callable[[], int] = random_epoch,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock`: monotonic seconds, to stamp updates for the staleness bound."""
        self.limits = limits
        self._epochs = epochs
        self._clock = clock
        self._sources: dict[str, SourceState] = {}
        self._received: dict[str, float] = {}
        self._instance_received: dict[str, dict[str, float]] = {}
        self._subscribers: set[SubscriberQueue] = set()
        self.closed = False

    @property
    def sources(self) -> Mapping[str, SourceState]:
        return self._sources

    def get(self, name: str) -> SourceState:
        source = self._sources.get(name)
        if source is None:
            raise UnknownSource(f"no source named {name!r}")
        return source

    def source_for(self, name: str, kind: metrics_pb2.SourceKind.ValueType) -> SourceState:
        """The source named `name`, created if new; checks kind and the source limit."""
        source = self._sources.get(name)
        if source is not None:
            if source.kind != kind:
                raise SourceConflict(
                    f"source {name!r} is a {metrics_pb2.SourceKind.Name(source.kind)} source; "
                    f"it cannot take {metrics_pb2.SourceKind.Name(kind)} data"
                )
            return source
        if len(self._sources) >= self.limits.max_sources:
            raise TooManySources(
                f"the collector holds its limit of {self.limits.max_sources} sources; "
                f"source {name!r} was not created"
            )
        source = SourceState(
            name,
            kind,
            epoch=self._epochs(),
            resume_window=self.limits.resume_window,
            max_series=self._max_series(kind),
        )
        source.encode_plain = self._encode_plain()
        self._sources[name] = source
        for sub in self._subscribers:
            if sub.wants(name):
                sub.resync(name)
        return source

    def apply(
        self,
        name: str,
        kind: metrics_pb2.SourceKind.ValueType,
        samples: Sequence[SeriesSample],
        now_unix_ms: int,
        *,
        received: float,
        replace: bool = False,
        instance: str = "",
    ) -> Position:
        """Fold a batch into a source (creating it if new) and publish the update.

        `now_unix_ms` stamps the update; `received` (monotonic seconds) restarts
        the idle timers of the source and of `instance` once the batch is accepted."""
        feed = self.feed(name, kind, received=received, instance=instance)
        feed.apply(samples, now_unix_ms, replace=replace)
        position = feed.close()
        assert position is not None
        return position

    def feed(
        self,
        name: str,
        kind: metrics_pb2.SourceKind.ValueType,
        *,
        received: float,
        instance: str = "",
    ) -> SourceFeed:
        """A `SourceFeed` for batches of `name` applied back to back (see its rules)."""
        return SourceFeed(self, name, kind, received, instance)

    def _bind(
        self, name: str, kind: metrics_pb2.SourceKind.ValueType, samples: Sequence[SeriesSample]
    ) -> SourceState:
        if name not in self._sources:
            self._check_new_source_batch(name, kind, samples)
        return self.source_for(name, kind)

    def _wanting(self, name: str) -> list[SubscriberQueue]:
        return [sub for sub in self._subscribers if sub.wants(name)]

    def _received_batch(self, name: str, instance: str, received: float) -> None:
        """Restart the idle timers of source `name` and of its `instance`."""
        self._received[name] = received
        timers = self._instance_received.setdefault(name, {})
        timers[instance] = received
        if len(timers) > self.limits.max_series_per_source:
            owners = self._sources[name].instances()
            for idle in [i for i in timers if i not in owners]:
                del timers[idle]

    def _now(self) -> float:
        return self._clock() if self._clock is not None else 0.0

    def _check_new_source_batch(
        self, name: str, kind: metrics_pb2.SourceKind.ValueType, samples: Sequence[SeriesSample]
    ) -> None:
        """Run the series limit before creating a source, so a refused batch leaves nothing."""
        probe = SourceState(name, kind, epoch=0, resume_window=0, max_series=self._max_series(kind))
        probe.check_limit(samples, replace=False)

    def _max_series(self, kind: metrics_pb2.SourceKind.ValueType) -> int:
        if kind == metrics_pb2.SOURCE_KIND_HOST:
            return sys.maxsize
        return self.limits.max_series_per_source

    def subscribe(
        self,
        sources: Sequence[str] = (),
        resume: Mapping[str, Position] | None = None,
        on_ready: Callable[[], None] | None = None,
        deltas: bool = False,
        replay: int = 0,
    ) -> SubscriberQueue:
        """`replay`: the most updates a source without a served position is replayed from."""
        if len(self._subscribers) >= self.limits.max_subscribers:
            raise TooManySubscribers(
                f"the collector serves its limit of {self.limits.max_subscribers} subscribers"
            )
        sub = SubscriberQueue(
            self.limits.subscriber_queue,
            frozenset(sources) if sources else None,
            on_ready,
            deltas,
            max_staleness=self.limits.max_staleness,
            clock=self._clock,
        )
        if self.closed:
            sub.close()
            return sub
        resume = resume or {}
        for name, source in self._sources.items():
            if not sub.wants(name):
                continue
            position = resume.get(name)
            decision = (
                source.resume(position.epoch, position.seq, deltas)
                if position is not None
                else None
            )
            if decision is None or not decision.recovered:
                room = min(replay, sub.capacity // 2 - len(sub) - 1)
                held = source.replay(room, deltas) if room > 0 else None
                if held is None:
                    sub.resync(name)
                    continue
                sub.offer(name, held.snapshot)
                for data in held.updates:
                    sub.offer(name, data)
                continue
            for data in decision.updates:
                sub.offer(name, data)
        plain = self._encode_plain()
        self._subscribers.add(sub)
        self._changed_encoding(plain)
        return sub

    def timed_instances(self, name: str) -> set[str]:
        """The instances of source `name` whose idle timer runs."""
        return set(self._instance_received.get(name, {}))

    def expire(self, now: float, now_unix_ms: int = 0) -> list[RemovedSource]:
        """Remove the push/OTLP sources, and the instances of those that go on, idle
        for `source_ttl` seconds as of `now`; `now_unix_ms` stamps the updates that
        remove instances (0: the source's last update time)."""
        ttl = self.limits.source_ttl
        if ttl <= 0 or self.closed:
            return []
        removed = []
        for name, source in list(self._sources.items()):
            if source.kind not in EXPIRING_KINDS:
                continue
            idle = now - self._received.setdefault(name, now)
            if idle >= ttl:
                self._remove(source)
                removed.append(RemovedSource(name, source.kind, source.epoch, idle))
                continue
            instances = self._instance_received.get(name, {})
            for instance, received in list(instances.items()):
                if now - received < ttl:
                    continue
                del instances[instance]
                update = source.remove_instance(instance, now_unix_ms or source.time_unix_ms)
                if update is not None:
                    publish(self._wanting(name), name, source, self._now())
                    removed.append(
                        RemovedSource(name, source.kind, source.epoch, now - received, instance)
                    )
        return removed

    def _remove(self, source: SourceState) -> None:
        del self._sources[source.name]
        self._received.pop(source.name, None)
        self._instance_received.pop(source.name, None)
        event = collector_pb2.CollectorEvent(
            source_removed=collector_pb2.SourceRemoved(source=source.name, epoch=source.epoch)
        ).SerializeToString()
        for sub in self._subscribers:
            if sub.wants(source.name):
                sub.remove(source.name, event)

    def unsubscribe(self, sub: SubscriberQueue) -> None:
        plain = self._encode_plain()
        self._subscribers.discard(sub)
        self._changed_encoding(plain)

    def _encode_plain(self) -> bool:
        """Whether updates are encoded in full too (see the rules above)."""
        subscribers = self._subscribers
        return not subscribers or not all(sub.deltas for sub in subscribers)

    def _changed_encoding(self, before: bool) -> None:
        plain = self._encode_plain()
        if plain != before:
            for source in self._sources.values():
                source.encode_plain = plain

    def snapshot(
        self, name: str, reason: ResyncReason = metrics_pb2.RESYNC_REASON_UNSPECIFIED
    ) -> bytes:
        """The encoded snapshot of `name`, marked with `reason` if it has one."""
        return with_resync(self.get(name).snapshot(), reason)

    def close(self) -> None:
        self.closed = True
        for sub in self._subscribers:
            sub.close()
