"""A clock and callback queue that a test advances by hand, in place of an asyncio loop.

It is the `Scheduler` a `WriteBatch` takes: `time`, `call_soon`, `call_later`.
Nothing runs until the test calls `run_due` or `advance`, so what happens
"before the paced flush" is decided by the test, not by a machine's speed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["FakeLoop"]


class FakeLoop:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._order = itertools.count()
        self._calls: list[tuple[float, int, Callable[[], object]]] = []

    def time(self) -> float:
        return self.now

    def call_soon(self, callback: Callable[[], object]) -> None:
        heapq.heappush(self._calls, (self.now, next(self._order), callback))

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        heapq.heappush(self._calls, (self.now + delay, next(self._order), callback))

    @property
    def waits(self) -> list[float]:
        """Seconds from now until each pending callback is due, soonest first."""
        return [when - self.now for when, _, _ in sorted(self._calls)]

    def run_due(self) -> None:
        """Run every callback due by now, in order (call_soon ones included)."""
        while self._calls and self._calls[0][0] <= self.now:
            _, _, callback = heapq.heappop(self._calls)
            callback()

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass, running each callback at the time it is due."""
        end = self.now + seconds
        while self._calls and self._calls[0][0] <= end:
            self.now = max(self.now, self._calls[0][0])
            self.run_due()
        self.now = end
