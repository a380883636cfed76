"""Every error the Python client raises, in one tree.

ClientError
├── ProtocolViolation   the bridge sent something the wire does not allow
│                       (undecodable frame, text frame, a Hello without
│                       metrics-bridge.v1 or a heartbeat interval, a
│                       snapshot with malformed values);
│                       the connection is dropped and the client reconnects
└── ConnectionRejected  the bridge closed with a code that says "do not
                        retry" (docs/protocol.md, `reconnect.should_reconnect`);
                        `BridgeClient.run` stops
"""

from __future__ import annotations

__all__ = ["ClientError", "ConnectionRejected", "ProtocolViolation"]


class ClientError(Exception):
    """Base of every error raised by bridge.client."""


class ProtocolViolation(ClientError):
    """The bridge broke the wire contract; reconnecting starts clean."""


class ConnectionRejected(ClientError):
    """The bridge refused the client for good; retrying would not help."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"bridge closed the connection with {code}: {reason or 'no reason'}")
        self.code = code
        self.reason = reason
