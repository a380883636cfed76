"""Real collector and bridge processes plus small clients for the bridge's integration tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import CLOSED, OPEN
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from metrics_bridge.v1 import bridge_pb2, collector_pb2, collector_pb2_grpc, metrics_pb2
from tests.support.processes import ServerProcess, running
from tests.support.timing import scaled

PROTOCOL = "metrics-bridge.v1"


def covered_seqs(message: bridge_pb2.ServerMessage) -> list[int]:
    """The seqs an update brings the client through: its own, or a merged update's
    `first_seq..seq` (a bridge that falls behind merges a channel's updates)."""
    return list(range(message.first_seq or message.update.seq, message.update.seq + 1))


@contextmanager
def collector(*args: str) -> Iterator[ServerProcess]:
    with running(
        "collector",
        ["--listen", "127.0.0.1:0", "--interval", "0.1", "--host-source", "host", *args],
    ) as process:
        yield process


@contextmanager
def bridge(collector_address: str, *args: str, name: str = "c1") -> Iterator[ServerProcess]:
    with running(
        "bridge",
        [
            "--listen",
            "127.0.0.1:0",
            "--collector",
            f"{name}={collector_address}" if name else collector_address,
            "--heartbeat",
            "0.5",
            *args,
        ],
    ) as process:
        yield process


class Pusher:
    """Drives a pushed source of a collector, one Push call per batch."""

    def __init__(self, address: str, source: str = "svc") -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = collector_pb2_grpc.MetricsCollectorStub(self.channel)
        self.source = source

    def push(self, value: float, series: int = 1) -> metrics_pb2.Position:
        samples = [
            collector_pb2.Sample(
                name="load",
                labels=[metrics_pb2.Label(name="i", value=str(i))],
                kind=metrics_pb2.METRIC_KIND_GAUGE,
                number=value,
            )
            for i in range(series)
        ]
        request = collector_pb2.PushRequest(source=self.source, samples=samples)
        response = self.stub.Push(iter([request]), timeout=scaled(10))
        position: metrics_pb2.Position = response.position
        return position

    def close(self) -> None:
        self.channel.close()


class Client:
    """A WebSocket client speaking metrics-bridge.v1, reading ServerMessages."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, **kwargs: object) -> Client:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(PROTOCOL)],
            open_timeout=scaled(10),
            **kwargs,  # type: ignore[arg-type]
        )
        return cls(ws)

    async def _recv_for(self, seconds: float) -> bridge_pb2.ServerMessage:
        data = await asyncio.wait_for(self.ws.recv(), max(0.01, seconds))
        assert isinstance(data, bytes), "the bridge sends binary frames only"
        return bridge_pb2.ServerMessage.FromString(data)

    async def recv(self, within: float = 10) -> bridge_pb2.ServerMessage:
        return await self._recv_for(scaled(within))

    async def next(self, *bodies: str, within: float = 10) -> bridge_pb2.ServerMessage:
        """The next message with one of `bodies`, skipping others (heartbeats, catalogs...)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + scaled(within)
        while True:
            message = await self._recv_for(deadline - loop.time())
            if message.WhichOneof("body") in bodies:
                return message

    async def greeted(self) -> bridge_pb2.Catalog:
        hello = await self.recv()
        assert hello.HasField("hello"), hello
        catalog = await self.recv()
        assert catalog.HasField("catalog"), catalog
        return catalog.catalog

    async def wait_for_channel(self, channel: str, within: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + scaled(within)
        while True:
            message = await self._recv_for(deadline - loop.time())
            if message.HasField("catalog") and channel in [
                c.channel for c in message.catalog.channels
            ]:
                return

    async def send(self, message: bridge_pb2.ClientMessage) -> None:
        await self.ws.send(message.SerializeToString())

    async def subscribe(self, channel: str, resume: metrics_pb2.Position | None = None) -> None:
        item = bridge_pb2.ChannelRequest(channel=channel)
        if resume is not None:
            item.resume.CopyFrom(resume)
        await self.send(bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[item])))

    async def close(self) -> None:
        await self.ws.close()


async def ready_client(url: str, channel: str, **kwargs: object) -> Client:
    """A client that has seen `channel` in the catalog (the bridge follows its collector)."""
    client = await Client.open(url, **kwargs)
    catalog = await client.greeted()
    if channel not in [c.channel for c in catalog.channels]:
        await client.wait_for_channel(channel)
    return client


def small_receive_buffer_socket(address: str, size: int = 4096) -> socket.socket:
    """A connected TCP socket whose receive window stays small, to make a slow reader."""
    host, port = address.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.connect((host, int(port)))
    return sock


class RawClient:
    """A blocking-socket WebSocket client that reads only when told to (a slow reader)."""

    def __init__(self, url: str, receive_buffer: int = 4096) -> None:
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol(PROTOCOL)])
        self.sock = small_receive_buffer_socket(
            url.removeprefix("ws://").rstrip("/"), receive_buffer
        )
        self.sock.settimeout(scaled(10))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and self.protocol.state is not OPEN:
            self.protocol.receive_data(self.sock.recv(65536))
            self.pending = self.protocol.events_received()
        assert self.protocol.state is OPEN, self.protocol.handshake_exc

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, message: bridge_pb2.ClientMessage) -> None:
        self.protocol.send_binary(message.SerializeToString())
        self._flush()

    def subscribe(self, channel: str) -> None:
        request = bridge_pb2.Subscribe(channels=[bridge_pb2.ChannelRequest(channel=channel)])
        self.send(bridge_pb2.ClientMessage(subscribe=request))

    def read_until_closed(
        self, within: float = 30
    ) -> tuple[list[bridge_pb2.ServerMessage], int | None]:
        """Read everything the bridge sent until the connection ends: messages and close code."""
        messages: list[bridge_pb2.ServerMessage] = []
        self.sock.settimeout(scaled(within))
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            for event in self.protocol.events_received():
                if isinstance(event, WsFrame) and event.opcode is Opcode.BINARY:
                    messages.append(bridge_pb2.ServerMessage.FromString(bytes(event.data)))
            if not data or self.protocol.state is CLOSED:
                close = self.protocol.close_rcvd
                return messages, close.code if close is not None else None

    def read_for(self, seconds: float) -> list[bridge_pb2.ServerMessage]:
        """Read whatever arrives for `seconds`."""
        messages: list[bridge_pb2.ServerMessage] = []
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.05)
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, WsFrame) and event.opcode is Opcode.BINARY:
                    messages.append(bridge_pb2.ServerMessage.FromString(bytes(event.data)))
            self._flush()
        return messages

    def close(self) -> None:
        self.sock.close()
