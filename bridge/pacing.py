"""When the write batch goes out: at once when the bridge keeps up, paced when it does not.

A flush costs one send() per dirty connection, whatever number of frames each
holds. When events arrive faster than a fan-out takes, flushing after every
event spends a send() per client per event; waiting a little after a long
flush lets the next events join one send() per client instead. Metrics are
state, so under load it is better to deliver several frames per send() a few
milliseconds later than to fall ever further behind.

Rules:
- A flush is paced by `delay(now)`: zero if the last flush ended at least
  `gap` seconds before `now`, otherwise what is left of that gap.
- The gap after a flush is `share` of that flush's duration, at most
  `max_gap`: a 20 ms fan-out to 1,000 clients may be followed by 5 ms of
  gathering, a fan-out to ten clients by microseconds.
- So at a steady low rate (events further apart than a fan-out) no flush ever
  waits, and added latency is bounded by `max_gap`.
"""

from __future__ import annotations

__all__ = [
    "FlushPacer",
]


class FlushPacer:
    """Decides how long a new batch waits before it is flushed."""

    __slots__ = ("_ready_at", "max_gap", "share")

    def __init__(self, share: float = 0.25, max_gap: float = 0.01) -> None:
        self.share = share
        self.max_gap = max_gap
        self._ready_at = float("-inf")

    def delay(self, now: float) -> float:
        """Seconds to wait before flushing a batch started at `now`."""
        return max(0.0, self._ready_at - now)

    def flushed(self, started: float, ended: float) -> None:
        """A flush ran from `started` to `ended`."""
        self._ready_at = ended + min(self.max_gap, self.share * max(0.0, ended - started))
