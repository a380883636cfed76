"""Tokens on the client side: where one comes from and when to refresh it.

The client never verifies a token (the bridge does); it only reads `exp` from
the payload to know when to ask for a new one.

Rules (docs/protocol.md, "Tokens"; web/src/token.js follows the same):
- A token is sent as Connect{token} as soon as the WebSocket opens, on every
  connection; a token source that is a function is called before each
  connection, so a client closed with 4001 (expired) reconnects with a new one.
- A token with `exp` is refreshed in-band (Refresh{token}) 30 s before its
  exp, or once 80% of its remaining lifetime has passed if that comes later
  (`refresh_delay` = remaining - min(30 s, 20% of remaining)). Only a
  function source can refresh; a fixed string is sent as it is.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Awaitable, Callable

__all__ = ["TokenSource", "fetch_token", "refresh_delay", "token_expiry"]

TokenSource = str | Callable[[], str | Awaitable[str]]

# Refresh this long before exp at most, or a fifth of the remaining lifetime if shorter.
REFRESH_AHEAD = 30.0


def token_expiry(token: str) -> float | None:
    """The `exp` claim (seconds since 1970), unverified; None if absent or unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def refresh_delay(token: str, wall_now: float) -> float | None:
    """Seconds until this token should be replaced in-band; None without exp."""
    exp = token_expiry(token)
    if exp is None:
        return None
    remaining = exp - wall_now
    return max(0.0, remaining - min(REFRESH_AHEAD, remaining * 0.2))


async def fetch_token(source: TokenSource) -> str:
    if isinstance(source, str):
        return source
    token = source()
    if inspect.isawaitable(token):
        token = await token
    return str(token)
