"""Every way a bridge connection can end, and the errors behind them.

WebSocket close codes the bridge sends (docs/protocol.md is the contract):

| code | name                | meaning                                             | client should |
|------|---------------------|-----------------------------------------------------|---------------|
| 1001 | GOING_AWAY          | the bridge is shutting down                         | reconnect     |
| 1003 | UNSUPPORTED_DATA    | a text frame arrived; the protocol is binary only   | not retry     |
| 1007 | INVALID_DATA        | a binary frame is not a valid ClientMessage         | not retry     |
| 1008 | POLICY_VIOLATION    | no subprotocol offered, or message rate exceeded    | not retry     |
| 1009 | MESSAGE_TOO_BIG     | a client message is over Limits.max_message_bytes   | not retry     |
| 1011 | INTERNAL_ERROR      | a bridge bug, or no pong to the bridge's ping       | reconnect     |
| 1013 | TRY_AGAIN_LATER     | the bridge is at its connection limit               | reconnect     |
| 4000 | SLOW_CONSUMER       | the client did not read for too long                | reconnect     |
| 4001 | TOKEN_EXPIRED       | the token's exp passed without a Refresh            | reconnect     |
| 4500 | TOKEN_REQUIRED      | no Connect{token} first, within the handshake time  | not retry     |
| 4501 | TOKEN_INVALID       | bad signature, malformed, wrong aud/iss, not yet nbf| not retry     |

The bridge's own codes are split in two ranges: 4000-4499 mean "reconnect
(with backoff) and resume", 4500-4999 mean "do not retry without a change".
After 4001 a client gets a fresh token (a token function is called again)
before it reconnects.
The "client should" column is the clients' rule, written once in
`bridge/client/reconnect.py` (and conformance/close_codes.json); a test checks
this table against it.
Every close carries a human-readable reason (at most 123 bytes).

Errors are one small tree: `ClientError` ends one connection with its code;
`UpstreamError` restarts one collector stream. Nothing here ends the process.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "MAX_REASON_BYTES",
    "AtCapacity",
    "BadUpstreamEvent",
    "BridgeError",
    "ClientError",
    "CloseCode",
    "InternalError",
    "MalformedMessage",
    "MissingSubprotocol",
    "PingTimeout",
    "RateLimited",
    "SlowConsumer",
    "TextFrame",
    "TokenExpired",
    "TokenInvalid",
    "TokenRequired",
    "UpstreamError",
    "UpstreamGap",
    "clip_reason",
]


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    SLOW_CONSUMER = 4000
    TOKEN_EXPIRED = 4001
    TOKEN_REQUIRED = 4500
    TOKEN_INVALID = 4501


MAX_REASON_BYTES = 123


def clip_reason(reason: str) -> str:
    """A close reason must fit a control frame: 123 bytes of UTF-8."""
    data = reason.encode()
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class ClientError(BridgeError):
    """Ends one client connection with `code` and a reason the client can read."""

    code: CloseCode = CloseCode.POLICY_VIOLATION

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = clip_reason(reason)


class TextFrame(ClientError):
    code = CloseCode.UNSUPPORTED_DATA


class MalformedMessage(ClientError):
    code = CloseCode.INVALID_DATA


class RateLimited(ClientError):
    code = CloseCode.POLICY_VIOLATION


class MissingSubprotocol(ClientError):
    code = CloseCode.POLICY_VIOLATION


class AtCapacity(ClientError):
    code = CloseCode.TRY_AGAIN_LATER


class SlowConsumer(ClientError):
    code = CloseCode.SLOW_CONSUMER


class TokenExpired(ClientError):
    code = CloseCode.TOKEN_EXPIRED


class TokenRequired(ClientError):
    code = CloseCode.TOKEN_REQUIRED


class TokenInvalid(ClientError):
    code = CloseCode.TOKEN_INVALID


class InternalError(ClientError):
    code = CloseCode.INTERNAL_ERROR


class PingTimeout(ClientError):
    code = CloseCode.INTERNAL_ERROR


class UpstreamError(BridgeError):
    """A collector stream cannot go on as is; the bridge restarts it and resumes."""


class UpstreamGap(UpstreamError):
    """An update does not follow the channel's position (wrong epoch or seq)."""


class BadUpstreamEvent(UpstreamError):
    """A collector sent bytes that are not a CollectorEvent the bridge understands."""
