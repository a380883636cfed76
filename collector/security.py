"""The collector's security at startup: TLS credentials, push tokens, the exposure rule.

Reads the files named by --tls-cert/--tls-key/--client-ca and --push-tokens
(rules in metrics_shared/tls.py and collector/push_auth.py) and applies the
exposure rule (collector/exposure.py). Any problem is a `StartupRefused`
naming the flag, the file or what is missing; the process logs it and exits 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from collector.config import CollectorConfig
from collector.exposure import exposure
from collector.push_auth import PushAccess, TokenFileError
from metrics_shared.tls import TlsFileError

__all__ = ["Security", "StartupRefused", "load_security"]

log = logging.getLogger(__name__)


class StartupRefused(Exception):
    """The collector will not start as configured; the message says why."""


@dataclass(frozen=True)
class Security:
    credentials: grpc.ServerCredentials | None
    """For every listener; None: plaintext."""
    access: PushAccess


def load_security(config: CollectorConfig) -> Security:
    tls = config.server_tls()
    optional = (config.otlp_listen, config.otlp_http_listen)
    listeners = [config.listen, *(address for address in optional if address is not None)]
    found = exposure(
        listeners,
        tls=tls is not None,
        client_ca=bool(tls and tls.client_ca),
        push_tokens=bool(config.push_tokens),
    )
    if found.gaps and not config.allow_insecure:
        raise StartupRefused(
            f"{found.describe()}. Give them, or --allow-insecure to start anyway (README: Security)"
        )
    if found.gaps:
        log.warning("INSECURE (--allow-insecure): %s", found.describe())
    try:
        credentials = tls.credentials() if tls else None
    except TlsFileError as exc:
        raise StartupRefused(str(exc)) from None
    return Security(credentials, load_access(config))


def load_access(config: CollectorConfig) -> PushAccess:
    path = config.push_tokens
    if not path:
        return PushAccess.open()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise StartupRefused(f"--push-tokens {path}: {reason}") from None
    try:
        access = PushAccess.parse(text, config.host_source)
    except TokenFileError as exc:
        raise StartupRefused(f"--push-tokens {path}: {exc}") from None
    log.info("Push and OTLP Export need a bearer token: %d tokens from %s", len(access), path)
    return access
