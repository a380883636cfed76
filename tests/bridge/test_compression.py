"""permessage-deflate on a real bridge: negotiated without context takeover,
each frame compressed once and the same bytes sent to every such client."""

from __future__ import annotations

import base64
import os
import socket
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from bridge.frame import deflate_message
from metrics_bridge.v1 import bridge_pb2
from tests.bridge.stack import PROTOCOL, Pusher, bridge, collector
from tests.support.timing import scaled

CHANNEL = "c1/svc"
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, Pusher]]:
    with collector() as col:
        pusher = Pusher(col.addresses["grpc"])
        pusher.push(0.0)
        with bridge(col.addresses["grpc"], "--compression", "deflate") as br:
            url = br.addresses["url"]
            with WireClient(url, None) as watcher:
                watcher.wait_for_channel()
            yield url, pusher
        pusher.close()


@dataclass(frozen=True)
class WireFrame:
    rsv1: bool
    opcode: int
    raw: bytes
    """The whole frame as it came off the socket."""
    payload: bytes


class WireClient:
    """A WebSocket client made by hand, so tests see the bridge's frames byte for byte."""

    def __init__(self, url: str, extensions: str | None) -> None:
        host, port = url.removeprefix("ws://").rstrip("/").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=scaled(10))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET / HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Protocol: {PROTOCOL}",
        ]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *header_lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 101"), status
        headers = dict(line.split(": ", 1) for line in header_lines)
        self.extensions = headers.get("Sec-WebSocket-Extensions", "")
        self.window_bits = 15
        for param in self.extensions.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "server_max_window_bits":
                self.window_bits = int(value)

    def _read(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the bridge closed the connection"
        self.buffer += data

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._read()
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken

    def frame(self) -> WireFrame:
        head = self._take(2)
        length = head[1] & 0x7F
        extended = b""
        if length == 126:
            extended = self._take(2)
        elif length == 127:
            extended = self._take(8)
        if extended:
            length = int.from_bytes(extended, "big")
        payload = self._take(length)
        return WireFrame(bool(head[0] & 0x40), head[0] & 0x0F, head + extended + payload, payload)

    def message(self, frame: WireFrame) -> bridge_pb2.ServerMessage:
        data = frame.payload
        if frame.rsv1:
            inflater = zlib.decompressobj(wbits=-self.window_bits)
            data = inflater.decompress(data + b"\x00\x00\xff\xff")
        return bridge_pb2.ServerMessage.FromString(data)

    def next_message(self) -> tuple[WireFrame, bridge_pb2.ServerMessage]:
        while True:
            frame = self.frame()
            if frame.opcode == 0x2:
                return frame, self.message(frame)

    def updates_until(self, seq: int) -> list[tuple[WireFrame, bridge_pb2.ServerMessage]]:
        """Every update frame up to the one at `seq`, that one last."""
        updates: list[tuple[WireFrame, bridge_pb2.ServerMessage]] = []
        while not updates or updates[-1][1].update.seq != seq:
            frame, message = self.next_message()
            if message.HasField("update"):
                updates.append((frame, message))
        return updates

    def wait_for_channel(self) -> None:
        while True:
            _, message = self.next_message()
            if CHANNEL in [c.channel for c in message.catalog.channels]:
                return

    def send(self, message: bridge_pb2.ClientMessage, compress: bool = False) -> None:
        payload = message.SerializeToString()
        first = 0x82
        if compress:
            payload = deflate_message(payload, 15)
            first |= 0x40
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes((first, 0x80 | len(payload))) + mask + masked)

    def subscribe(self, compress: bool = False) -> None:
        request = bridge_pb2.Subscribe(channels=[bridge_pb2.ChannelRequest(channel=CHANNEL)])
        self.send(bridge_pb2.ClientMessage(subscribe=request), compress)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_deflate_is_accepted_without_context_takeover_on_either_side(
    stack: tuple[str, Pusher],
) -> None:
    with WireClient(stack[0], BROWSER_OFFER) as client:
        params = {p.strip().partition("=")[0] for p in client.extensions.split(";")}
    assert {"permessage-deflate", "server_no_context_takeover"} <= params
    assert "client_no_context_takeover" in params


def test_every_deflate_client_gets_the_same_compressed_bytes_for_an_update(
    stack: tuple[str, Pusher],
) -> None:
    url, pusher = stack
    with ExitStack() as opened:
        clients = [opened.enter_context(WireClient(url, BROWSER_OFFER)) for _ in range(3)]
        for client in clients:
            client.subscribe()
        # Many series so the update is worth compressing.
        position = pusher.push(1.5, series=60)
        received = [client.updates_until(position.seq)[-1] for client in clients]
    frames = [frame for frame, _ in received]
    assert all(frame.rsv1 for frame in frames)
    assert frames[0].raw == frames[1].raw == frames[2].raw
    update = received[0][1].update
    assert received[0][1].channel == CHANNEL
    assert list(update.values.numbers) == [1.5] * len(update.values.ids)
    assert len(update.values.ids) == 60


def test_a_client_that_offers_no_compression_on_the_same_bridge_gets_plain_frames(
    stack: tuple[str, Pusher],
) -> None:
    url, pusher = stack
    with WireClient(url, None) as client:
        assert client.extensions == ""
        client.subscribe()
        position = pusher.push(2.5, series=60)
        updates = client.updates_until(position.seq)
    assert not any(frame.rsv1 for frame, _ in updates)


def test_compressed_client_messages_each_inflate_on_their_own(
    stack: tuple[str, Pusher],
) -> None:
    url, pusher = stack
    with WireClient(url, BROWSER_OFFER) as client:
        # Two compressed requests, each with a fresh compressor as client_no_context_takeover says.
        client.subscribe(compress=True)
        client.subscribe(compress=True)
        acks = 0
        while acks < 2:
            acks += client.next_message()[1].HasField("subscribed")
        position = pusher.push(3.5, series=60)
        (_, update), *_ = reversed(client.updates_until(position.seq))
        assert list(update.update.values.numbers) == [3.5] * 60
