"""JWTs for tests: an HS256 secret file and tokens with chosen claims."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt

__all__ = ["AUDIENCE", "SECRET", "token", "write_secret"]

SECRET = b"test-secret-of-at-least-32-bytes!!"
AUDIENCE = "metrics-bridge"


def token(
    secret: bytes = SECRET, *, ttl: float = 300, now: float | None = None, **claims: Any
) -> str:
    """An HS256 token expiring `ttl` seconds after `now` (default: the wall clock)."""
    issued = time.time() if now is None else now
    body: dict[str, Any] = {"aud": AUDIENCE, "exp": int(issued + ttl), **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, "HS256")


def write_secret(directory: Path, secret: bytes = SECRET) -> Path:
    path = directory / "jwt-secret"
    path.write_bytes(secret)
    return path
