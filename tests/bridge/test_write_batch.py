"""WriteBatch and ConnectionSink over a real socket pair: batching, pacing, close order."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.protocol import CLOSING, OPEN

from bridge.frame import FrameKind, make_frame
from bridge.pacing import FlushPacer
from bridge.sender import ParallelSender
from bridge.server import ConnectionSink, WriteBatch


class Transport:
    """The part of an asyncio transport the sink uses, over one end of a socket pair."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.written.append(data)


class Protocol:
    state = OPEN
    extensions: list[object] = []


class Connection:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.protocol = Protocol()

    async def close(self, code: int, reason: str) -> None:
        self.protocol.state = CLOSING
        self.transport.write(b"CLOSE")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(5)
    yield ours, theirs
    ours.close()
    theirs.close()


def frame(text: str) -> bytes:
    return make_frame(FrameKind.UPDATE, text.encode(), channel="c/s").wire


def sink_for(transport: Transport, batch: WriteBatch) -> ConnectionSink:
    return ConnectionSink(Connection(transport), batch)  # type: ignore[arg-type]


async def test_frames_written_in_one_iteration_leave_in_one_send(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    batch = WriteBatch(asyncio.get_running_loop(), ParallelSender(1), FlushPacer())
    sink = sink_for(Transport(pair[0]), batch)
    for text in ("one", "two", "three"):
        sink.write(make_frame(FrameKind.UPDATE, text.encode(), channel="c/s"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pair[1].recv(1000) == frame("one") + frame("two") + frame("three")


async def test_a_transport_without_a_plain_socket_gets_the_batch_through_write() -> None:
    batch = WriteBatch(asyncio.get_running_loop(), ParallelSender(1), FlushPacer())
    transport = Transport(None)
    sink = sink_for(transport, batch)
    sink.write(make_frame(FrameKind.UPDATE, b"one", channel="c/s"))
    sink.write(make_frame(FrameKind.UPDATE, b"two", channel="c/s"))
    await asyncio.sleep(0)
    assert transport.written == [frame("one") + frame("two")]


def after_a_long_flush() -> tuple[Transport, ConnectionSink]:
    """A sink whose batch has just had a 50 ms flush, so the next one waits 50 ms."""
    loop = asyncio.get_running_loop()
    pacer = FlushPacer(share=1.0, max_gap=0.05)
    pacer.flushed(loop.time() - 0.05, loop.time())
    transport = Transport(None)
    return transport, sink_for(transport, WriteBatch(loop, ParallelSender(1), pacer))


async def test_after_a_long_flush_the_next_batch_waits_and_gathers() -> None:
    transport, sink = after_a_long_flush()
    sink.write(make_frame(FrameKind.UPDATE, b"one", channel="c/s"))
    await asyncio.sleep(0.01)
    assert transport.written == []
    sink.write(make_frame(FrameKind.UPDATE, b"two", channel="c/s"))
    await asyncio.sleep(0.1)
    assert transport.written == [frame("one") + frame("two")]


async def test_frames_queued_before_a_close_go_out_before_the_close_frame() -> None:
    transport, sink = after_a_long_flush()
    sink.write(make_frame(FrameKind.UPDATE, b"last", channel="c/s"))
    sink.close(1001, "bridge shutting down")
    await asyncio.sleep(0.1)
    assert transport.written == [frame("last"), b"CLOSE"]


async def test_nothing_is_written_after_the_connection_stopped_being_open() -> None:
    batch = WriteBatch(asyncio.get_running_loop(), ParallelSender(1), FlushPacer())
    transport = Transport(None)
    sink = sink_for(transport, batch)
    sink.write(make_frame(FrameKind.UPDATE, b"late", channel="c/s"))
    sink.connection.protocol.state = CLOSING
    await asyncio.sleep(0)
    assert transport.written == []


async def test_ping_is_written_as_an_unmasked_ping_frame(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    batch = WriteBatch(asyncio.get_running_loop(), ParallelSender(1), FlushPacer())
    sink = sink_for(Transport(pair[0]), batch)
    sink.ping(b"\x00\x01\x02\x03")
    await asyncio.sleep(0)
    assert pair[1].recv(100) == b"\x89\x04\x00\x01\x02\x03"
