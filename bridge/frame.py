"""Server messages encoded once, as complete WebSocket frames.

A `Frame` holds one `ServerMessage` already wrapped in an unmasked WebSocket
binary frame header. Server frames are never masked, so the same bytes are
valid on every connection that did not negotiate an extension: the fan-out
writes `frame.wire` to each client as is, and never encodes per client.

Channel data is framed without decoding it: a collector's `CollectorEvent`
carries its snapshot/update in fields 10/11, the same numbers as in
`ServerMessage`, and concatenated protobuf messages merge, so
`ServerMessage(channel=...) + event_bytes` is the browser's message.

Connections that negotiated permessage-deflate get `deflated_wire(frame, bits)`:
the bridge always negotiates `server_no_context_takeover`, so each message is
compressed on its own and one compressed frame serves every such connection
with the same window; it is compressed on first use and kept with the frame.
RFC 7692 lets a sender choose per message, so a message deflate would not
shrink goes out uncompressed.

`with_resync(frame, reason)` is the same message with `ServerMessage.resync`
set, made by appending the one encoded field (concatenation merges again), so
marking a snapshot or merged update costs a copy, not an encoding.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import Enum

from metrics_bridge.v1 import bridge_pb2

__all__ = [
    "Frame",
    "FrameKind",
    "channel_prefix",
    "control_frame",
    "deflate_message",
    "deflated_wire",
    "make_frame",
    "ping_frame",
    "with_resync",
    "ws_header",
]


BINARY_OPCODE_FIN = 0x82
RSV1 = 0x40
_EMPTY_STORED_BLOCK = b"\x00\x00\xff\xff"
_RESYNC_TAG = b"\xa8\x01"  # field 21 (ServerMessage.resync), varint


class FrameKind(Enum):
    SNAPSHOT = "snapshot"
    UPDATE = "update"
    CONTROL = "control"


@dataclass(slots=True, eq=False)
class Frame:
    """One ServerMessage as a ready-to-write WebSocket binary frame.

    Never changed once made (only `deflated` fills in): one frame goes to
    every client of a channel. Not a frozen dataclass, whose __init__ costs
    five times as much, and one is made per update."""

    kind: FrameKind
    wire: bytes
    header_len: int
    channel: str = ""
    epoch: int = 0
    seq: int = 0
    deflated: dict[int, bytes] = field(default_factory=dict, compare=False, repr=False)
    """This frame compressed, by window bits; filled by `deflated_wire`."""

    @property
    def payload(self) -> bytes:
        """The ServerMessage bytes, without the WebSocket header."""
        return self.wire[self.header_len :]

    def __len__(self) -> int:
        return len(self.wire)


def ws_header(length: int, first: int = BINARY_OPCODE_FIN) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame (RFC 6455 5.2)."""
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def ping_frame(payload: bytes) -> bytes:
    """A server's WebSocket ping (never masked, payload under 126 bytes)."""
    return bytes((0x89, len(payload))) + payload


def deflate_message(payload: bytes, window_bits: int) -> bytes:
    """One message compressed as RFC 7692 7.2.1 says, with no context taken over."""
    encoder = zlib.compressobj(wbits=-window_bits)
    data = encoder.compress(payload) + encoder.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(_EMPTY_STORED_BLOCK) else data


def deflated_wire(frame: Frame, window_bits: int) -> bytes:
    """The frame for a permessage-deflate connection with this server window."""
    wire = frame.deflated.get(window_bits)
    if wire is None:
        payload = frame.payload
        data = deflate_message(payload, window_bits)
        if len(data) < len(payload):
            wire = ws_header(len(data), BINARY_OPCODE_FIN | RSV1) + data
        else:
            wire = frame.wire
        frame.deflated[window_bits] = wire
    return wire


_SHORT_HEADERS = tuple(ws_header(length) for length in range(126))
"""`ws_header` of every length that fits the first length byte: one is made per update."""


def make_frame(
    kind: FrameKind, *parts: bytes, channel: str = "", epoch: int = 0, seq: int = 0
) -> Frame:
    length = sum(map(len, parts))
    header = _SHORT_HEADERS[length] if length < 126 else ws_header(length)
    return Frame(kind, b"".join((header, *parts)), len(header), channel, epoch, seq)


def with_resync(frame: Frame, reason: int) -> Frame:
    """`frame` (a snapshot or update) with `ServerMessage.resync = reason` (a ResyncReason)."""
    if not 0 < reason < 128:
        raise ValueError(f"resync reason {reason} is not a one-byte ResyncReason")
    return make_frame(
        frame.kind,
        frame.payload,
        _RESYNC_TAG + bytes((reason,)),
        channel=frame.channel,
        epoch=frame.epoch,
        seq=frame.seq,
    )


def control_frame(message: bridge_pb2.ServerMessage) -> Frame:
    """A connection-level or status message, encoded once."""
    return make_frame(FrameKind.CONTROL, message.SerializeToString(), channel=message.channel)


def channel_prefix(channel: str) -> bytes:
    """The bytes that turn a CollectorEvent into a ServerMessage for `channel`."""
    return bridge_pb2.ServerMessage(channel=channel).SerializeToString()
