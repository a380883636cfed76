"""When to reconnect and how long to wait first.

Delays use exponential backoff with *full jitter* (a uniform draw between 0
and the exponential ceiling), so clients dropped by the same bridge restart
do not come back in lockstep. The attempt count restarts after a connection
that got as far as a valid Hello.

Whether to reconnect at all follows the close-code rule of docs/protocol.md
("Client rules"; conformance/close_codes.json): reconnect after the codes in
`RECONNECT_CODES` and the bridge's 4000-4499, stop after every other code. A
connection that never opened, that died without a close frame, or that the
client dropped itself (a dead link, a protocol violation) is always retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "RECONNECT_CODES",
    "RECONNECT_RANGE",
    "TOKEN_EXPIRED",
    "ReconnectPolicy",
    "should_reconnect",
]

# 1001 going away, 1005 a close frame without a code (said nothing: treated
# like a dropped link), 1006 no close frame, 1011 internal error or missed pong,
# 1012 service restart, 1013 try again later, 1014 bad gateway.
RECONNECT_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1014})
# The bridge's own "reconnect and resume" codes (4000 slow consumer).
RECONNECT_RANGE = range(4000, 4500)
# The token's exp passed: reconnect with a new token (a fixed one cannot be renewed).
TOKEN_EXPIRED = 4001


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
    return close_code is None or close_code in RECONNECT_CODES or close_code in RECONNECT_RANGE
