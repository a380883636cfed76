"""Server messages encoded once, as complete WebSocket frames.

A `Frame` holds one `ServerMessage` already wrapped in an unmasked WebSocket
binary frame header. Server frames are never masked, so the same bytes are
valid on every connection that did not negotiate an extension: the fan-out
writes `frame.wire` to each client as is, and never encodes per client.

Channel data is framed without decoding it: a collector's `CollectorEvent`
carries its snapshot/update in fields 10/11, the same numbers as in
`ServerMessage`, and concatenated protobuf messages merge, so
`ServerMessage(channel=...) + event_bytes` is the browser's message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

from metrics_bridge.v1 import bridge_pb2

BINARY_OPCODE_FIN = 0x82


class FrameKind(Enum):
    SNAPSHOT = "snapshot"
    UPDATE = "update"
    CONTROL = "control"


@dataclass(frozen=True, slots=True)
class Frame:
    """One ServerMessage as a ready-to-write WebSocket binary frame."""

    kind: FrameKind
    wire: bytes
    header_len: int
    channel: str = ""
    epoch: int = 0
    seq: int = 0

    @property
    def payload(self) -> bytes:
        """The ServerMessage bytes, without the WebSocket header."""
        return self.wire[self.header_len :]

    def __len__(self) -> int:
        return len(self.wire)


def ws_header(length: int) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame (RFC 6455 5.2)."""
    if length < 126:
        return struct.pack("!BB", BINARY_OPCODE_FIN, length)
    if length < 65536:
        return struct.pack("!BBH", BINARY_OPCODE_FIN, 126, length)
    return struct.pack("!BBQ", BINARY_OPCODE_FIN, 127, length)


def make_frame(
    kind: FrameKind, *parts: bytes, channel: str = "", epoch: int = 0, seq: int = 0
) -> Frame:
    length = sum(len(p) for p in parts)
    header = ws_header(length)
    return Frame(kind, b"".join((header, *parts)), len(header), channel, epoch, seq)


def control_frame(message: bridge_pb2.ServerMessage) -> Frame:
    """A connection-level or status message, encoded once."""
    return make_frame(FrameKind.CONTROL, message.SerializeToString(), channel=message.channel)


def channel_prefix(channel: str) -> bytes:
    """The bytes that turn a CollectorEvent into a ServerMessage for `channel`."""
    return bridge_pb2.ServerMessage(channel=channel).SerializeToString()
