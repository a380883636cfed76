"""Frames built once: plain, and compressed once for permessage-deflate connections."""

from __future__ import annotations

import os
import zlib

from bridge.frame import FrameKind, deflated_wire, make_frame, ping_frame, with_resync, ws_header
from metrics_bridge.v1 import bridge_pb2, metrics_pb2


def inflate(data: bytes, window_bits: int) -> bytes:
    """What a client does with a compressed message when no context is taken over."""
    return zlib.decompressobj(wbits=-window_bits).decompress(data + b"\x00\x00\xff\xff")


def split(wire: bytes) -> tuple[int, bytes]:
    """First header byte and payload of one unmasked server frame."""
    length = wire[1]
    offset = 2
    if length == 126:
        length, offset = int.from_bytes(wire[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(wire[2:10], "big"), 10
    assert len(wire) == offset + length
    return wire[0], wire[offset:]


def update_frame(values: int) -> bytes:
    message = bridge_pb2.ServerMessage(channel="c1/web")
    message.update.source = "web"
    message.update.seq = 7
    message.update.values.ids.extend(range(values))
    message.update.values.numbers.extend(float(i % 5) for i in range(values))
    return message.SerializeToString()


def test_plain_frame_is_a_final_binary_frame_holding_the_message() -> None:
    payload = update_frame(40)
    frame = make_frame(FrameKind.UPDATE, payload[:10], payload[10:], channel="c1/web")
    assert split(frame.wire) == (0x82, payload)
    assert frame.payload == payload


def test_header_uses_the_extended_length_forms() -> None:
    assert ws_header(125) == b"\x82\x7d"
    assert ws_header(126) == b"\x82\x7e\x00\x7e"
    assert ws_header(70_000) == b"\x82\x7f" + (70_000).to_bytes(8, "big")


def test_a_frame_has_the_header_ws_header_makes_for_its_length_on_both_sides_of_126() -> None:
    for length in (*range(130), 65_535, 65_536):
        frame = make_frame(
            FrameKind.UPDATE, b"\x01" * (length // 2), b"\x02" * (length - length // 2)
        )
        assert frame.wire[: frame.header_len] == ws_header(length)
        assert len(frame.wire) == frame.header_len + length


def test_deflated_frame_sets_rsv1_and_inflates_to_the_message_without_context() -> None:
    payload = update_frame(200)
    frame = make_frame(FrameKind.UPDATE, payload, channel="c1/web")
    first, data = split(deflated_wire(frame, 15))
    assert first == 0xC2
    assert len(data) < len(payload)
    assert inflate(data, 15) == payload


def test_deflated_frame_respects_a_smaller_negotiated_window() -> None:
    payload = update_frame(2000)
    frame = make_frame(FrameKind.SNAPSHOT, payload, channel="c1/web")
    _, data = split(deflated_wire(frame, 9))
    assert inflate(data, 9) == payload


def test_deflated_frame_is_compressed_once_per_window() -> None:
    frame = make_frame(FrameKind.UPDATE, update_frame(100), channel="c1/web")
    assert deflated_wire(frame, 12) is deflated_wire(frame, 12)
    assert set(frame.deflated) == {12}
    deflated_wire(frame, 15)
    assert set(frame.deflated) == {12, 15}


def test_message_that_deflate_does_not_shrink_goes_out_uncompressed() -> None:
    frame = make_frame(FrameKind.CONTROL, os.urandom(300))
    assert deflated_wire(frame, 15) == frame.wire


def test_ping_frame_is_an_unmasked_final_ping_with_its_payload() -> None:
    assert ping_frame(b"\x01\x02\x03\x04") == b"\x89\x04\x01\x02\x03\x04"


def test_a_frame_marked_with_a_resync_reason_decodes_to_the_same_message_plus_the_reason() -> None:
    message = bridge_pb2.ServerMessage(channel="c/host", first_seq=3)
    frame = make_frame(FrameKind.UPDATE, message.SerializeToString(), channel="c/host", seq=4)
    marked = with_resync(frame, metrics_pb2.RESYNC_REASON_STALE)
    decoded = bridge_pb2.ServerMessage.FromString(marked.payload)
    assert decoded.resync == metrics_pb2.RESYNC_REASON_STALE
    decoded.ClearField("resync")
    assert decoded == message
    assert (marked.kind, marked.channel, marked.seq) == (frame.kind, "c/host", 4)
