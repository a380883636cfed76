"""When to reconnect and how long to wait first.

Delays use exponential backoff with *full jitter* (a uniform draw between 0
and the exponential ceiling), so clients dropped by the same bridge restart
do not come back in lockstep. The attempt count restarts after a connection
that got as far as the bridge's Hello.

Whether to reconnect at all follows the bridge's documented close codes
(`bridge.errors.is_reconnect_code`): 1001, 1006, 1011-1014 and 4000-4499 mean
"reconnect", other codes mean "do not retry without a change". A connection
that never opened, or that died without a close frame, is always retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bridge.errors import is_reconnect_code


@dataclass(frozen=True)
class ReconnectPolicy:
    base: float = 0.5
    cap: float = 30.0

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number `attempt` (0 = first retry)."""
        return min(self.cap, self.base * (1 << min(attempt, 62)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))


def should_reconnect(close_code: int | None) -> bool:
    """None stands for "no close frame": a network failure, always retried."""
    return close_code is None or is_reconnect_code(close_code)
