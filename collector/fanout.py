"""One subscriber's bounded queue of encoded events. Pure: no asyncio; time comes
from an injected clock.

Rules:
- The queue holds at most `capacity` updates. Updates are the source's encoded
  bytes, shared with every other subscriber: a queued update costs a reference.
  An `Event` is stamped once, when it is published (`queued_at`, the clock's
  seconds), and the same `Event` goes to every subscriber.
- A source that needs a snapshot is queued as one `Resync(source, reason)`
  marker. The marker is resolved when the subscriber pops it, to the snapshot
  *as of then*, so while a marker is pending that source's updates are dropped:
  the snapshot will already contain them. A Resync for a subscribe, a new
  source or a lost position has no reason (RESYNC_REASON_UNSPECIFIED).
- Offering an update to a full queue is overflow: the subscriber is behind.
  Every queued update is dropped and each source that lost one (and the source
  being offered) gets a Resync marker instead (reason OVERFLOW), at most one
  per source.
- Staleness (`max_staleness` seconds, with a clock; 0 = off): when `pop`
  reaches an update queued more than `max_staleness` ago (now - queued_at >
  max_staleness) while another update of its source is still queued, every
  queued update of that source is dropped and `pop` returns
  `Resync(source, STALE)` in its place, to be resolved at once to the snapshot
  as of then, which holds them all. An old update that is the last queued of
  its source is the latest state: it is returned as it is. Items of other
  sources keep their order. The check is O(1) (the newest queued update of
  each source: an `Event` is offered to a queue at most once, so a popped
  update that is not its source's newest has a newer one behind it); the drop
  is O(queue) and comes at most once per source per bound.
- A source that is removed (idle expiry) drops its queued updates and its
  pending Resync and queues one `Removed(source, data)` (the encoded
  SourceRemoved, shared like updates). If a Removed marker for that name is
  still queued, nothing more is queued: the subscriber has not yet learned of
  the newer epoch that is now gone, since all of it came after the marker.
  A subscriber may thus be told of the removal of a source whose snapshot it
  was about to get; "gone" is still the truth. Overflow keeps Removed markers.
- Removed markers are at most one per source name and at most `capacity`: a
  subscriber with more undelivered removals than that cannot be brought up to
  date by snapshots, so its queue is closed with `lost` set to the reason
  (Subscribe ends with RESOURCE_EXHAUSTED and the subscriber starts over).
- `on_ready` is called when an update goes into an empty queue (a subscriber
  waits only once `pop` has found it empty), when a marker is queued, and on
  `close()`.
- `close()` (collector shutdown) drops what is queued and makes `pop` return
  None, so the stream ends promptly even for a subscriber that is behind.
- Counts: `dropped` (updates dropped for any reason), `overflows`,
  `stale_drops` (the updates dropped for staleness), `stale_resyncs`, and
  `stale_bursts`: stale resyncs since the queue was last found empty count as
  one burst (one log line each).
- Bound: `capacity` updates + one Resync per held source + `capacity` Removed;
  and no update is returned more than `max_staleness` after it was queued
  unless it is the newest queued of its source.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from metrics_bridge.v1 import metrics_pb2

__all__ = ["Event", "Removed", "Resync", "ResyncReason", "SubscriberQueue"]

ResyncReason: TypeAlias = metrics_pb2.ResyncReason.ValueType
UNSPECIFIED = metrics_pb2.RESYNC_REASON_UNSPECIFIED
STALE = metrics_pb2.RESYNC_REASON_STALE
OVERFLOW = metrics_pb2.RESYNC_REASON_OVERFLOW


@dataclass(slots=True)
class Event:
    """One queued update. Not frozen (never changed all the same): one or two
    are made per update, and a frozen dataclass costs five times as much."""

    source: str
    data: bytes
    queued_at: float = field(default=0.0, compare=False)
    """The clock's seconds when it was published (not part of equality)."""


@dataclass(frozen=True, slots=True)
class Resync:
    source: str
    reason: ResyncReason = UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Removed:
    """The source is gone; `data` is the encoded CollectorEvent(source_removed)."""

    source: str
    data: bytes


QueueItem = Event | Resync | Removed


class SubscriberQueue:
    def __init__(
        self,
        capacity: int,
        sources: frozenset[str] | None = None,
        on_ready: Callable[[], None] | None = None,
        deltas: bool = False,
        *,
        max_staleness: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`sources`: the source names wanted, or None for every source; `deltas`:
        it takes updates in their compact form (whole-number changes as deltas);
        `clock`: the seconds `Event.queued_at` is on (without it, no staleness bound)."""
        self.capacity = max(capacity, 1)
        self.sources = sources
        self.deltas = deltas
        self.on_ready = on_ready
        self.max_staleness = max_staleness if clock is not None else 0.0
        self._clock = clock
        self.overflows = 0
        self.dropped = 0
        self.stale_drops = 0
        self.stale_resyncs = 0
        self.stale_bursts = 0
        self._caught_up = True
        self.closed = False
        self.lost: str | None = None
        self._items: deque[QueueItem] = deque()
        self._limit = self.capacity
        """How long `_items` may grow: `capacity` updates and the markers queued."""
        self._newest: dict[str, Event] = {}
        self._pending: set[str] = set()
        self._removed: set[str] = set()

    def wants(self, source: str) -> bool:
        return self.sources is None or source in self.sources

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, source: str, data: bytes) -> None:
        """Queue an update stamped now (a replayed one: its wait here starts now)."""
        self.offer_event(Event(source, data, self._clock() if self._clock else 0.0))

    def offer_event(self, event: Event) -> None:
        """Queue an update; the same `Event` may go to every subscriber, once each."""
        if self.closed:
            return
        if event.source in self._pending:
            self.dropped += 1
            return
        items = self._items
        if len(items) >= self._limit:
            self._overflow(event.source)
            self._notify()
            return
        empty = not items
        items.append(event)
        self._newest[event.source] = event
        if empty:
            self._notify()

    def resync(self, source: str) -> None:
        """Queue a snapshot of `source` (subscribe, new source, lost position)."""
        if self.closed or source in self._pending:
            return
        self.dropped += self._drop_updates(source)
        self._items.append(Resync(source))
        self._limit += 1
        self._pending.add(source)
        self._notify()

    def remove(self, source: str, data: bytes) -> None:
        """`source` no longer exists; `data` tells the subscriber so."""
        if self.closed:
            return
        self.dropped += self._drop_updates(source)
        if source in self._pending:
            self._pending.discard(source)
            self._items = deque(
                i for i in self._items if not (isinstance(i, Resync) and i.source == source)
            )
            self._limit -= 1
        if source not in self._removed:
            if len(self._removed) >= self.capacity:
                self.lost = (
                    f"fell behind by more than {self.capacity} undelivered source removals; "
                    "subscribe again"
                )
                self.close()
                return
            self._items.append(Removed(source, data))
            self._limit += 1
            self._removed.add(source)
        self._notify()

    def _drop_updates(self, source: str) -> int:
        """Drop the queued updates of `source`; how many there were."""
        if self._newest.pop(source, None) is None:
            return 0
        held = len(self._items)
        self._items = deque(
            i for i in self._items if not (isinstance(i, Event) and i.source == source)
        )
        return held - len(self._items)

    def _overflow(self, source: str) -> None:
        self.overflows += 1
        behind: list[str] = []
        kept: deque[QueueItem] = deque()
        for item in self._items:
            if not isinstance(item, Event):
                kept.append(item)
            else:
                self.dropped += 1
                if item.source not in behind:
                    behind.append(item.source)
        self.dropped += 1
        if source not in behind:
            behind.append(source)
        for name in behind:
            if name not in self._pending:
                kept.append(Resync(name, OVERFLOW))
                self._pending.add(name)
        self._items = kept
        self._limit = self.capacity + len(kept)
        self._newest.clear()

    def pop(self, now: float | None = None) -> QueueItem | None:
        """The next item; None when empty or closed. `now`, the clock's reading, is
        for a caller taking several items at once: one clock read for all."""
        items = self._items
        if not items:
            self._caught_up = True
            return None
        item = items.popleft()
        if type(item) is Event:
            source = item.source
            newest = self._newest
            if newest.get(source) is item:
                del newest[source]
            else:
                bound = self.max_staleness
                if (
                    bound > 0
                    and self._clock is not None
                    and (self._clock() if now is None else now) - item.queued_at > bound
                ):
                    return self._stale(source)
        elif isinstance(item, Resync):
            self._limit -= 1
            self._pending.discard(item.source)
        else:
            self._limit -= 1
            self._removed.discard(item.source)
        return item

    def now(self) -> float | None:
        """The clock's reading, for `pop(now)`; None without a clock."""
        return None if self._clock is None else self._clock()

    def _stale(self, source: str) -> Resync:
        """Replace the popped stale update of `source` and the newer ones queued."""
        gone = 1 + self._drop_updates(source)
        self.dropped += gone
        self.stale_drops += gone
        self.stale_resyncs += 1
        if self._caught_up:
            self.stale_bursts += 1
            self._caught_up = False
        return Resync(source, STALE)

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        self._limit = self.capacity
        self._newest.clear()
        self._pending.clear()
        self._removed.clear()
        self._notify()

    def _notify(self) -> None:
        if self.on_ready is not None:
            self.on_ready()
