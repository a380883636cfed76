"""The bridge's browser-facing security, built from its config: the token
policy, the Origin allowlist and the TLS context (this module reads the key
and certificate files; the decisions live in bridge/auth.py and bridge/origin.py).

Rules:
- A key or certificate that cannot be read stops the bridge at start with a
  message naming the file.
- `TlsFiles.reload()` (SIGHUP) loads the certificate and key again into the
  same context: connections made afterwards get the new certificate, open
  ones are untouched. A reload that fails is logged and the old pair stays.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from bridge.auth import Access, KeySource, OpenAccess, TokenVerifier, jwks_keys, public_key
from bridge.auth import secret_key as hs256_key
from bridge.config import BridgeConfig
from bridge.origin import OriginPolicy

__all__ = ["TlsFiles", "access_for", "origin_policy_for"]

log = logging.getLogger(__name__)


def _keys(config: BridgeConfig) -> KeySource:
    try:
        if config.jwt_secret_file:
            return hs256_key(Path(config.jwt_secret_file).read_bytes())
        if config.jwt_public_key_file:
            return public_key(Path(config.jwt_public_key_file).read_bytes())
        assert config.jwt_jwks_file
        return jwks_keys(Path(config.jwt_jwks_file).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"metrics-bridge: cannot load the JWT key: {exc}") from None


def access_for(config: BridgeConfig, wall_clock: Callable[[], float] = time.time) -> Access:
    if config.auth != "jwt":
        return OpenAccess()
    return TokenVerifier(
        _keys(config),
        wall_clock=wall_clock,
        audience=config.jwt_audience,
        issuer=config.jwt_issuer,
    )


def origin_policy_for(config: BridgeConfig) -> OriginPolicy:
    return OriginPolicy(config.allowed_origin, loopback=config.on_loopback)


class TlsFiles:
    """The server's TLS context and the files it is loaded from."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert = cert
        self.key = key
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            self.context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise SystemExit(f"metrics-bridge: cannot load --tls-cert/--tls-key: {exc}") from None

    def reload(self) -> bool:
        try:
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS reload failed, keeping the old certificate: %s", exc)
            return False
        log.info("TLS certificate reloaded from %s", self.cert)
        return True
