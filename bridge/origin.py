"""Which web pages may open a WebSocket to the bridge: the Origin allowlist, without I/O.

A browser sends the page's origin with every WebSocket handshake, and a page
cannot forge it; checking it stops cross-site WebSocket hijacking (a page on
another site opening `ws://127.0.0.1:8765/` from the user's browser).

Rules:
- No Origin header (a non-browser client: tail, the Python client, Node):
  allowed. Such clients are stopped by tokens (`--auth jwt`), not by Origin.
- The bridge's own origin (the dashboard it serves: scheme and the request's
  Host) is always allowed.
- `--allowed-origin` patterns (globs, case-insensitive: `https://*.example.com`,
  `http://localhost:*`) allow more. Without any, a bridge listening on
  loopback also allows `http://localhost:*`, `http://127.0.0.1:*` and
  `http://[::1]:*` (a dev server on another port); one listening elsewhere
  allows only its own origin.
- Anything else is refused with HTTP 403 before the upgrade.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from fnmatch import fnmatchcase

__all__ = ["LOOPBACK_ORIGINS", "OriginPolicy", "is_loopback"]

LOOPBACK_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OriginPolicy:
    def __init__(self, patterns: Sequence[str], *, loopback: bool) -> None:
        chosen = tuple(patterns) or (LOOPBACK_ORIGINS if loopback else ())
        self.patterns = tuple(p.lower().rstrip("/") for p in chosen)

    def allows(self, origin: str | None, scheme: str, host: str | None) -> bool:
        """Whether a handshake with this Origin header may upgrade; `scheme` is
        http or https, `host` the request's Host header."""
        if origin is None:
            return True
        origin = origin.strip().lower()
        if host is not None and origin == f"{scheme}://{host.strip().lower()}":
            return True
        return any(fnmatchcase(origin, pattern) for pattern in self.patterns)
