"""What may enter one client's bounded outbound buffer, bounded in bytes and in time.

The buffer is the connection's transport write buffer plus its pending write
batch (frames gathered for the next send(), see bridge/write_batch.py); its
size in bytes is passed in as `buffered`, and `now` is passed in too, so this
is plain logic.

Rules (metrics are state: the latest wins, intermediate deltas may be skipped):
- The *budget* is how many bytes the buffer may hold for updates. Without a
  drain rate it is `limit`. With one (see `observe`) it is
  `min(limit, max(floor, rate * max_staleness))`: what is queued drains
  within `max_staleness`, and a client always gets at least `floor` bytes
  (16 KiB, a few typical snapshots), so a snapshot reaches a slow client.
  `max_staleness` 0 turns the time bound off: the budget is always `limit`.
- A client that owes nothing takes any frame that fits under the budget. This
  is the fan-out's fast path, checked first; the rules below refine the rest.
- An update is written while it fits: `buffered + len(frame) <= budget`.
- An update that does not fit is skipped and its channel becomes *owed* a
  snapshot, with a reason: OVERFLOW if it would not fit under `limit`
  either, else STALE (it fits the bytes but would wait longer than
  `max_staleness`). Later updates of an owed channel are skipped too; the
  channel keeps its first reason. The client is *lagging* from the first skip.
- Once the buffer has drained to `budget // 2` or less, the next update of an
  owed channel is replaced by that channel's latest snapshot marked with the
  reason (RESYNC), which clears the debt. `owed_resyncs()` lists owed
  channels and their reasons for the periodic tick, so a quiet channel is
  resynced too.
- A snapshot is written when the buffer is empty, or when what is queued
  ahead of it drains in time (`buffered <= budget`) and it fits under
  `limit`; so a snapshot larger than the limit still gets through to an idle
  client. Otherwise it is skipped and owed like an update.
- Control frames (hello, acks, status, heartbeats, pongs) are small and always
  written, up to a hard cap of `2 * limit`; over it the client is closed.
- A client that has been lagging for longer than `stuck_timeout` is closed
  with a reconnect code (`expired`). Lagging ends when nothing is owed.
Drain rate (`observe`, called on every hub tick with the bytes ever queued,
the bytes buffered and the time):
- An interval between two ticks is *backlogged* when bytes queued before its
  start are still buffered at its end: the buffer never emptied in between,
  so the bytes that left (`queued - buffered` grew by that much) over the
  elapsed time are what the client can take. The pending write batch is
  flushed within the pacer's `max_gap` (10 ms), so it alone never makes an
  interval backlogged.
- The rate is a moving average of the backlogged samples (half old, half
  new). A client that reads nothing has a rate falling to 0, so a budget of
  `floor`, until `stuck_timeout` closes it.
- A client never backlogged over a tick has no rate (its budget is `limit`).
  Once measured, an interval that drained everything it started with can
  only raise the rate (the client took at least that much).
So a client's buffer never holds more than `2 * limit` bytes plus one
snapshot, and the updates in it were queued when they would drain within
`max_staleness` at the measured rate (or within `floor / rate`, if longer);
the pending batch adds at most the pacer's `max_gap`.
"""

from __future__ import annotations

from enum import Enum

from bridge.frame import Frame, FrameKind
from metrics_bridge.v1 import metrics_pb2

__all__ = ["BUDGET_FLOOR", "OVERFLOW", "STALE", "Admit", "OutboundBuffer"]

BUDGET_FLOOR = 16 * 1024
"""The smallest time budget, in bytes, whatever the drain rate."""
STALE = metrics_pb2.RESYNC_REASON_STALE
OVERFLOW = metrics_pb2.RESYNC_REASON_OVERFLOW


class Admit(Enum):
    WRITE = "write"
    SKIP = "skip"
    RESYNC = "resync"
    CLOSE = "close"


class OutboundBuffer:
    """Admission policy for one client's bounded outbound buffer."""

    __slots__ = (
        "_mark",
        "_owed",
        "budget",
        "floor",
        "lagging_since",
        "limit",
        "max_staleness",
        "rate",
        "stuck_timeout",
    )

    def __init__(
        self,
        limit: int,
        stuck_timeout: float,
        max_staleness: float = 0.0,
        floor: int = BUDGET_FLOOR,
    ) -> None:
        self.limit = limit
        self.stuck_timeout = stuck_timeout
        self.max_staleness = max_staleness
        self.floor = floor
        self.budget = limit
        self.rate: float | None = None
        """Bytes per second the client drained while backlogged; None until measured."""
        self.lagging_since: float | None = None
        # None while nothing is owed or measured: an idle client holds no dict or tuple.
        self._owed: dict[str, int] | None = None
        self._mark: tuple[int, int, float] | None = None

    @property
    def lagging(self) -> bool:
        return self.lagging_since is not None

    def is_owed(self, channel: str) -> bool:
        return self._owed is not None and channel in self._owed

    def owed_reason(self, channel: str) -> int:
        """Why the channel is owed (a ResyncReason), or 0 if it is not."""
        return 0 if self._owed is None else self._owed.get(channel, 0)

    def admit(self, frame: Frame, buffered: int, now: float) -> Admit:
        if self.lagging_since is None and buffered + len(frame.wire) <= self.budget:
            return Admit.WRITE
        kind = frame.kind
        size = buffered + len(frame.wire)
        if kind is FrameKind.UPDATE:
            if self._owed is not None and frame.channel in self._owed:
                return Admit.RESYNC if buffered <= self.budget // 2 else Admit.SKIP
            if size <= self.budget:
                return Admit.WRITE
            self._owe(frame.channel, now, OVERFLOW if size > self.limit else STALE)
            return Admit.SKIP
        if kind is FrameKind.SNAPSHOT:
            if buffered == 0 or (buffered <= self.budget and size <= self.limit):
                self.settle(frame.channel)
                return Admit.WRITE
            self._owe(frame.channel, now, OVERFLOW if size > self.limit else STALE)
            return Admit.SKIP
        if size > 2 * self.limit:
            return Admit.CLOSE
        return Admit.WRITE

    def settle(self, channel: str) -> int:
        """The channel is even again (a snapshot was written, or it was dropped).

        Returns why it was owed (a ResyncReason), or 0 if it was not.
        """
        owed = self._owed
        if owed is None:
            return 0
        reason = owed.pop(channel, 0)
        if not owed:
            self._owed = None
            self.lagging_since = None
        return reason

    def owed_resyncs(self, buffered: int) -> list[tuple[str, int]]:
        """Owed channels and their reasons to resync now, if the buffer has drained enough."""
        if self._owed is None or buffered > self.budget // 2:
            return []
        return list(self._owed.items())

    def expired(self, now: float) -> bool:
        return self.lagging_since is not None and now - self.lagging_since > self.stuck_timeout

    def observe(self, queued_total: int, buffered: int, now: float) -> None:
        """Measure the drain rate; `queued_total` counts every byte ever queued."""
        if not self.max_staleness:
            return
        mark = self._mark
        if mark is not None:
            queued_then, left_then, then = mark
            elapsed = now - then
            if elapsed <= 0:
                return
            left = queued_total - buffered
            sample = (left - left_then) / elapsed
            rate = self.rate
            if left < queued_then:
                self.rate = sample if rate is None else (rate + sample) / 2
            elif rate is not None and sample > rate:
                self.rate = sample
            if self.rate is not None:
                wanted = int(self.rate * self.max_staleness)
                self.budget = min(self.limit, max(self.floor, wanted))
        self._mark = (queued_total, queued_total - buffered, now) if buffered > 0 else None

    def queue_age(self, buffered: int) -> float:
        """Seconds `buffered` bytes take to drain at the measured rate; 0 without a rate."""
        if self.rate is None or buffered <= 0:
            return 0.0
        return buffered / self.rate if self.rate > 0 else float("inf")

    def _owe(self, channel: str, now: float, reason: int) -> None:
        if self._owed is None:
            self._owed = {}
        self._owed.setdefault(channel, reason)
        if self.lagging_since is None:
            self.lagging_since = now
