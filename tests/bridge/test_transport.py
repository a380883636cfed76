"""ConnectionSink: pre-encoded frames gathered per connection, never written after a close."""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections import deque
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import CLOSING, OPEN, State

from bridge.frame import FrameKind, make_frame
from bridge.pacing import FlushPacer
from bridge.sender import ParallelSender
from bridge.transport import ConnectionSink, ListQueue, negotiated_deflate_bits
from bridge.write_batch import WriteBatch
from tests.bridge.fake_loop import FakeLoop


class Transport:
    """The part of an asyncio transport the sink uses, over one end of a socket pair."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.written: list[bytes] = []
        self.buffer = 0

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def get_write_buffer_size(self) -> int:
        return self.buffer

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written.append(data)


class Protocol:
    def __init__(self, extensions: list[object]) -> None:
        self.state: State = OPEN
        self.extensions = extensions


class Connection:
    def __init__(self, transport: Transport, extensions: list[object]) -> None:
        self.transport = transport
        self.protocol = Protocol(extensions)
        self.closed = asyncio.Event()

    async def close(self, code: int, reason: str) -> None:
        self.protocol.state = CLOSING
        self.transport.write(b"CLOSE")
        self.closed.set()


@pytest.fixture
def loop() -> FakeLoop:
    return FakeLoop()


def update(text: str) -> bytes:
    return make_frame(FrameKind.UPDATE, text.encode(), channel="c/s").wire


def write(sink: ConnectionSink, text: str) -> None:
    sink.write(make_frame(FrameKind.UPDATE, text.encode(), channel="c/s"))


def sink_for(
    transport: Transport, batch: WriteBatch, extensions: list[object] | None = None
) -> ConnectionSink:
    return ConnectionSink(Connection(transport, extensions or []), batch)  # type: ignore[arg-type]


def paced_batch(loop: FakeLoop) -> WriteBatch:
    """A batch that has just had a 50 ms flush, so the next one waits 50 ms."""
    pacer = FlushPacer(share=1.0, max_gap=0.05)
    pacer.flushed(loop.time() - 0.05, loop.time())
    return WriteBatch(loop, ParallelSender(1), pacer)


def test_frames_written_before_a_flush_leave_in_one_send(
    loop: FakeLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    sink = sink_for(Transport(pair[0]), WriteBatch(loop, ParallelSender(1), FlushPacer()))
    for text in ("one", "two", "three"):
        write(sink, text)
    loop.run_due()
    assert pair[1].recv(1000) == update("one") + update("two") + update("three")


def test_a_transport_without_a_plain_socket_gets_the_frames_through_write(
    loop: FakeLoop,
) -> None:
    transport = Transport(None)
    sink = sink_for(transport, WriteBatch(loop, ParallelSender(1), FlushPacer()))
    write(sink, "one")
    write(sink, "two")
    loop.run_due()
    assert transport.written == [update("one") + update("two")]


def test_buffered_counts_the_transport_buffer_and_the_frames_not_yet_flushed(
    loop: FakeLoop,
) -> None:
    transport = Transport(None)
    transport.buffer = 100
    sink = sink_for(transport, WriteBatch(loop, ParallelSender(1), FlushPacer()))
    write(sink, "one")
    assert sink.buffered() == 100 + len(update("one"))
    loop.run_due()
    assert sink.buffered() == 100


def test_nothing_is_written_after_the_connection_stopped_being_open(loop: FakeLoop) -> None:
    transport = Transport(None)
    sink = sink_for(transport, WriteBatch(loop, ParallelSender(1), FlushPacer()))
    write(sink, "late")
    sink.connection.protocol.state = CLOSING
    loop.run_due()
    assert transport.written == []


async def test_frames_queued_before_a_close_go_out_before_the_close_frame(
    loop: FakeLoop,
) -> None:
    transport = Transport(None)
    sink = sink_for(transport, paced_batch(loop))
    write(sink, "last")
    assert loop.waits == [pytest.approx(0.05)]
    sink.close(1001, "bridge shutting down")
    connection: Any = sink.connection
    await asyncio.wait_for(connection.closed.wait(), 5)
    loop.advance(0.1)
    assert transport.written == [update("last"), b"CLOSE"]


def test_ping_is_written_as_an_unmasked_ping_frame(
    loop: FakeLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    sink = sink_for(Transport(pair[0]), WriteBatch(loop, ParallelSender(1), FlushPacer()))
    sink.ping(b"\x00\x01\x02\x03")
    loop.run_due()
    assert pair[1].recv(100) == b"\x89\x04\x00\x01\x02\x03"


def deflate(local_no_context_takeover: bool) -> PerMessageDeflate:
    return PerMessageDeflate(
        remote_no_context_takeover=True,
        local_no_context_takeover=local_no_context_takeover,
        remote_max_window_bits=15,
        local_max_window_bits=12,
    )


def test_a_connection_without_deflate_gets_the_frames_as_built() -> None:
    assert negotiated_deflate_bits([]) == 0


def test_deflate_without_context_takeover_compresses_with_the_negotiated_window(
    loop: FakeLoop,
) -> None:
    transport = Transport(None)
    batch = WriteBatch(loop, ParallelSender(1), FlushPacer())
    sink = sink_for(transport, batch, [deflate(local_no_context_takeover=True)])
    assert sink.deflate_bits == 12
    write(sink, "x" * 200)
    loop.run_due()
    [wire] = transport.written
    assert wire[0] == 0xC2  # FIN, RSV1 (compressed), binary
    payload = wire[2:] if wire[1] < 126 else wire[4:]
    message = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
    assert message == make_frame(FrameKind.UPDATE, b"x" * 200, channel="c/s").payload


def test_deflate_with_context_takeover_is_refused() -> None:
    with pytest.raises(RuntimeError, match="context takeover"):
        negotiated_deflate_bits([deflate(local_no_context_takeover=False)])


def test_list_queue_does_what_websockets_asks_of_its_deques() -> None:
    ours, theirs = ListQueue(), deque[int]()
    for queue in (ours, theirs):
        queue.append(1)
        queue.append(2)
        queue.extendleft([3, 4])
        queue.remove(2)
    assert list(ours) == list(theirs) == [4, 3, 1]
    assert ours.popleft() == theirs.popleft() == 4
    assert len(ours) == len(theirs) == 2
