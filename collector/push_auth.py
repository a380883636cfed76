"""Who may push which source: bearer tokens from the `--push-tokens` file. Sans-I/O.

The file holds one token per line; `#` starts a comment, blank lines are skipped:

    # token (or sha256:<hex digest of it>)    sources it may push
    3f7c0e9a51d2b8a46e1f                      checkout,checkout-*
    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08   web-?

Rules:
- Push and OTLP Export carry gRPC metadata `authorization: Bearer <token>`
  (OTel exporters: their `headers` setting). Missing, not `Bearer`, or a token
  not in the file: UNAUTHENTICATED.
- A token is at least 16 characters without spaces; a line may give its
  SHA-256 digest instead (`sha256:` + 64 hex digits), so the file need not
  hold the secret. Tokens are kept only as digests, and a presented token's
  digest is compared with every entry by `hmac.compare_digest`, without an
  early exit.
- Sources are comma-separated globs (fnmatch, case-sensitive: `*`, `?`,
  `[...]`). A token may push the sources they match and no other
  (PERMISSION_DENIED naming the source), and never the collector's host
  source, whatever its globs.
- Errors and logs name a token by its line in the file, never by its value.
- Without a tokens file (`PushAccess.open()`), every call is admitted: the
  kind rules (a push cannot write the host source or an OTLP source) still hold.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from collector.errors import PermissionDenied, Unauthenticated

__all__ = ["MIN_TOKEN_LENGTH", "Grant", "PushAccess", "TokenFileError", "digest"]

MIN_TOKEN_LENGTH = 16
DIGEST_PREFIX = "sha256:"
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
SCHEME = "bearer"


class TokenFileError(ValueError):
    """A line of the tokens file breaks the format; the message names the line."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Grant:
    """One token's entry: its line in the file and the source globs it may push."""

    line: int
    sources: tuple[str, ...]

    def allows(self, source: str) -> bool:
        return any(fnmatchcase(source, pattern) for pattern in self.sources)


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    grant: Grant


class PushAccess:
    """Admits a call by its `authorization` metadata, then checks each source it writes."""

    def __init__(self, entries: Iterable[_Entry], host_source: str, required: bool) -> None:
        self._entries = tuple(entries)
        self.host_source = host_source
        self.required = required

    @classmethod
    def open(cls) -> PushAccess:
        """No tokens file: every call admitted, every source allowed."""
        return cls((), "", required=False)

    @classmethod
    def parse(cls, text: str, host_source: str) -> PushAccess:
        """The tokens file's text; raises TokenFileError naming the first bad line."""
        entries: list[_Entry] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if line:
                entries.append(_parse_line(line, number))
        seen: dict[bytes, int] = {}
        for entry in entries:
            if entry.digest in seen:
                raise TokenFileError(
                    f"line {entry.grant.line}: the same token as line {seen[entry.digest]}"
                )
            seen[entry.digest] = entry.grant.line
        if not entries:
            raise TokenFileError("no tokens in it (one 'TOKEN SOURCE-GLOB[,GLOB...]' per line)")
        return cls(entries, host_source, required=True)

    def __len__(self) -> int:
        return len(self._entries)

    def admit(self, authorization: str | None) -> Grant | None:
        """The grant of the call's token (None when no tokens are required);
        raises Unauthenticated."""
        if not self.required:
            return None
        if authorization is None:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != SCHEME or not token.strip():
            raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
        presented = digest(token.strip())
        found: Grant | None = None
        for entry in self._entries:  # every entry, no early exit
            if hmac.compare_digest(entry.digest, presented):
                found = entry.grant
        if found is None:
            raise Unauthenticated("unknown push token")
        return found

    def check(self, grant: Grant | None, source: str) -> None:
        """Raises PermissionDenied unless the call's grant may write `source`."""
        if grant is None:
            return
        if source == self.host_source:
            raise PermissionDenied(
                f"source {source!r} is the collector's host source; no token may push it"
            )
        if not grant.allows(source):
            raise PermissionDenied(
                f"the token (line {grant.line} of the tokens file) may not push source "
                f"{source!r}; it may push {', '.join(grant.sources)}"
            )


def _parse_line(line: str, number: int) -> _Entry:
    parts = line.split()
    if len(parts) != 2:
        raise TokenFileError(f"line {number}: expected 'TOKEN SOURCE-GLOB[,GLOB...]'")
    token, globs = parts
    sources = tuple(glob for glob in globs.split(",") if glob)
    if not sources:
        raise TokenFileError(f"line {number}: no source globs")
    if token.startswith(DIGEST_PREFIX):
        hex_digest = token.removeprefix(DIGEST_PREFIX).lower()
        if not HEX_DIGEST.fullmatch(hex_digest):
            raise TokenFileError(f"line {number}: sha256: needs 64 hex digits")
        return _Entry(bytes.fromhex(hex_digest), Grant(number, sources))
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenFileError(f"line {number}: a token needs at least {MIN_TOKEN_LENGTH} characters")
    return _Entry(digest(token), Grant(number, sources))
