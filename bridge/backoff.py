"""Reconnect delays: gRPC's connection-backoff numbers, as a pure function.

Attempt 0 waits about 1 s, each later attempt 1.6 times longer, capped at
120 s, each delay spread by +-20 % jitter so that many bridges (or browsers)
that lost the same peer do not come back in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "Backoff",
]


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 1.0
    multiplier: float = 1.6
    jitter: float = 0.2
    maximum: float = 120.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt `attempt` (0-based)."""
        base = min(self.initial * self.multiplier ** min(attempt, 64), self.maximum)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return base * (1 + spread)
