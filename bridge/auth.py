"""Who may connect and which channels they may read: tokens and their claims, without I/O.

Rules:
- `--auth none` (`OpenAccess`): no token is asked for; every connection may
  read every channel. A Connect or Refresh a client sends anyway is ignored.
- `--auth jwt` (`TokenVerifier`): a connection is greeted only after a
  `ClientMessage.connect{token}` whose JWT verifies:
  - the signature, with HS256 and a shared secret, or RS256/ES256 with a
    public key (the algorithm follows the key's type), or a JWKS (the key
    named by the token's `kid`, its algorithm from the key); the token's own
    `alg` header never picks the algorithm;
  - `exp` is required and must be in the future, `nbf` (if present) in the
    past, both on the injected wall clock with `leeway` seconds of slack;
  - `aud` must name the configured audience and `iss` be the configured
    issuer, when those are configured.
- The `channels` claim, a list of glob patterns (`web-1/*`, `*/checkout`;
  `*` also matches `/`), limits what the connection may see and subscribe
  to. A token without it may read every channel.
- A refusal is a `TokenRefused` with a short `reason` (the /metrics label)
  and `retry`: True only for an expired token (the client fetches a new one
  and reconnects), False for everything that a new attempt with the same
  kind of token would fail again (bad signature, malformed, wrong audience).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

__all__ = [
    "Access",
    "Grant",
    "KeySource",
    "OpenAccess",
    "TokenRefused",
    "TokenVerifier",
    "jwks_keys",
    "public_key",
    "secret_key",
]


@dataclass(frozen=True, slots=True)
class Grant:
    """What one accepted connection may do; `channels` None means every channel."""

    channels: tuple[str, ...] | None = None
    expires_at: float | None = None
    subject: str = ""

    def allows(self, channel: str) -> bool:
        if self.channels is None:
            return True
        return any(fnmatchcase(channel, pattern) for pattern in self.channels)

    def expired(self, wall_now: float) -> bool:
        return self.expires_at is not None and wall_now >= self.expires_at


class TokenRefused(Exception):
    """A token was not accepted; `reason` is a short label, `retry` whether a new token helps."""

    def __init__(self, reason: str, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry = retry


class Access(Protocol):
    """The bridge's token policy, as the hub sees it."""

    @property
    def required(self) -> bool:
        """Whether a connection must send Connect{token} before it is greeted."""
        ...

    def verify(self, token: str) -> Grant:
        """The grant a token carries; raises TokenRefused."""
        ...


class OpenAccess:
    """`--auth none`: no token needed, every channel readable."""

    required = False

    def verify(self, token: str) -> Grant:
        return Grant()


@dataclass(frozen=True, slots=True)
class KeySource:
    """Verification keys: one key with its algorithm, or keys by `kid` (a JWKS)."""

    key: Any = None
    algorithm: str = ""
    by_kid: Mapping[str, tuple[Any, str]] | None = None

    def for_token(self, token: str) -> tuple[Any, str]:
        if self.by_kid is None:
            return self.key, self.algorithm
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError as exc:
            raise TokenRefused("malformed", f"malformed token: {exc}") from None
        if len(self.by_kid) == 1 and kid is None:
            return next(iter(self.by_kid.values()))
        found = self.by_kid.get(str(kid)) if kid is not None else None
        if found is None:
            raise TokenRefused("unknown_key", "token signed with an unknown key")
        return found


def secret_key(secret: bytes) -> KeySource:
    """HS256 with a shared secret (the secret file's bytes, surrounding whitespace removed)."""
    secret = secret.strip()
    if len(secret) < 32:
        raise ValueError("the JWT secret must be at least 32 bytes")
    return KeySource(secret, "HS256")


def public_key(pem: bytes) -> KeySource:
    """RS256 for an RSA public key, ES256 for an EC (P-256) one, from PEM."""
    key = load_pem_public_key(pem)
    if isinstance(key, RSAPublicKey):
        return KeySource(key, "RS256")
    if isinstance(key, EllipticCurvePublicKey):
        return KeySource(key, "ES256")
    raise ValueError(f"unsupported public key type {type(key).__name__}: use RSA or EC P-256")


def jwks_keys(text: str) -> KeySource:
    """Keys of a JWKS document ({"keys": [...]}), by `kid`; each key's algorithm
    is its `alg`, else the one its type implies."""
    keys: dict[str, tuple[Any, str]] = {}
    for number, item in enumerate(json.loads(text).get("keys", [])):
        jwk = jwt.PyJWK(item)
        if jwk.algorithm_name not in ("RS256", "ES256", "HS256"):
            raise ValueError(f"JWKS key {number}: unsupported algorithm {jwk.algorithm_name}")
        keys[str(item.get("kid", number))] = (jwk.key, jwk.algorithm_name)
    if not keys:
        raise ValueError("the JWKS holds no keys")
    return KeySource(by_kid=keys)


# PyJWT errors that are not about time, as (reason, message prefix).
_REFUSALS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.InvalidSignatureError, "bad_signature", "bad signature"),
    (jwt.InvalidAudienceError, "wrong_audience", "wrong audience"),
    (jwt.InvalidIssuerError, "wrong_issuer", "wrong issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim", "missing claim"),
    (jwt.InvalidAlgorithmError, "bad_signature", "algorithm not allowed"),
    (jwt.DecodeError, "malformed", "malformed token"),
    (jwt.PyJWTError, "invalid", "invalid token"),
)


class TokenVerifier:
    """`--auth jwt`: verifies tokens against `keys`, with time from `wall_clock`."""

    required = True

    def __init__(
        self,
        keys: KeySource,
        *,
        wall_clock: Callable[[], float],
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 5.0,
    ) -> None:
        self.keys = keys
        self.wall_clock = wall_clock
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway

    def verify(self, token: str) -> Grant:
        if not token:
            raise TokenRefused("missing_token", "no token: send Connect{token}")
        key, algorithm = self.keys.for_token(token)
        required = ["exp"] + (["aud"] if self.audience else []) + (["iss"] if self.issuer else [])
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # Time is checked below, on the injected clock.
                options={"verify_exp": False, "verify_nbf": False, "require": required},
            )
        except jwt.PyJWTError as exc:
            for kind, reason, text in _REFUSALS:
                if isinstance(exc, kind):
                    raise TokenRefused(reason, f"{text}: {exc}") from None
            raise  # pragma: no cover - PyJWTError is the last entry
        return self._grant(claims)

    def _grant(self, claims: Mapping[str, Any]) -> Grant:
        now = self.wall_clock()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            raise TokenRefused("malformed", "exp and nbf must be numbers (seconds since 1970)")
        if now >= exp + self.leeway:
            raise TokenRefused("expired", "token expired", retry=True)
        if now + self.leeway < nbf:
            raise TokenRefused("not_yet_valid", "token not valid yet (nbf)")
        channels = claims.get("channels")
        if channels is not None and (
            not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)
        ):
            raise TokenRefused("malformed", "the channels claim must be a list of strings")
        return Grant(
            channels=None if channels is None else tuple(channels),
            expires_at=float(exp) + self.leeway,
            subject=str(claims.get("sub", "")),
        )
