"""One subscriber's bounded queue of encoded events. Pure: no asyncio, no clock.

Rules:
- The queue holds at most `capacity` updates. Updates are the source's encoded
  bytes, shared with every other subscriber: a queued update costs a reference.
- A source that needs a snapshot is queued as one `Resync(source)` marker. The
  marker is resolved when the subscriber pops it, to the snapshot *as of then*,
  so while a marker is pending that source's updates are dropped: the snapshot
  will already contain them.
- Offering an update to a full queue is overflow: the subscriber is behind.
  Every queued update is dropped and each source that lost one (and the source
  being offered) gets a Resync marker instead, at most one per source.
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
- `close()` (collector shutdown) drops what is queued and makes `pop` return
  None, so the stream ends promptly even for a subscriber that is behind.
- Bound: `capacity` updates + one Resync per held source + `capacity` Removed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Event", "Removed", "Resync", "SubscriberQueue"]


@dataclass(frozen=True, slots=True)
class Event:
    source: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Resync:
    source: str


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
    ) -> None:
        """`sources`: the source names wanted, or None for every source; `deltas`:
        it takes updates in their compact form (whole-number changes as deltas)."""
        self.capacity = max(capacity, 1)
        self.sources = sources
        self.deltas = deltas
        self.on_ready = on_ready
        self.overflows = 0
        self.dropped = 0
        self.closed = False
        self.lost: str | None = None
        self._items: deque[QueueItem] = deque()
        self._updates = 0
        self._pending: set[str] = set()
        self._removed: set[str] = set()

    def wants(self, source: str) -> bool:
        return self.sources is None or source in self.sources

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, source: str, data: bytes) -> None:
        self.offer_event(Event(source, data))

    def offer_event(self, event: Event) -> None:
        """Queue an update; the same `Event` may go to every subscriber."""
        if self.closed:
            return
        if event.source in self._pending:
            self.dropped += 1
            return
        if self._updates >= self.capacity:
            self._overflow(event.source)
        else:
            self._items.append(event)
            self._updates += 1
        self._notify()

    def resync(self, source: str) -> None:
        """Queue a snapshot of `source` (subscribe, new source, lost position)."""
        if self.closed or source in self._pending:
            return
        kept = [i for i in self._items if not (isinstance(i, Event) and i.source == source)]
        self.dropped += len(self._items) - len(kept)
        self._items = deque(kept)
        self._updates = sum(1 for i in kept if isinstance(i, Event))
        self._items.append(Resync(source))
        self._pending.add(source)
        self._notify()

    def remove(self, source: str, data: bytes) -> None:
        """`source` no longer exists; `data` tells the subscriber so."""
        if self.closed:
            return
        gone = sum(1 for i in self._items if isinstance(i, Event) and i.source == source)
        self._items = deque(i for i in self._items if isinstance(i, Removed) or i.source != source)
        self._updates -= gone
        self.dropped += gone
        self._pending.discard(source)
        if source not in self._removed:
            if len(self._removed) >= self.capacity:
                self.lost = (
                    f"fell behind by more than {self.capacity} undelivered source removals; "
                    "subscribe again"
                )
                self.close()
                return
            self._items.append(Removed(source, data))
            self._removed.add(source)
        self._notify()

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
                kept.append(Resync(name))
                self._pending.add(name)
        self._items = kept
        self._updates = 0

    def pop(self) -> QueueItem | None:
        """The next item; None when empty or closed."""
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, Resync):
            self._pending.discard(item.source)
        elif isinstance(item, Removed):
            self._removed.discard(item.source)
        else:
            self._updates -= 1
        return item

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        self._updates = 0
        self._pending.clear()
        self._removed.clear()
        self._notify()

    def _notify(self) -> None:
        if self.on_ready is not None:
            self.on_ready()
