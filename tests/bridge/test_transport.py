"""ConnectionSink: pre-encoded frames gathered per connection, never written after a close.
BridgeConnection: an attached connection's messages reach the hub with no task reading them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import tracemalloc
import weakref
import zlib
from collections.abc import AsyncIterator, Awaitable
from types import CoroutineType
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import CLOSING, OPEN, State
from websockets.protocol import Protocol as WsProtocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from bridge.config import parse_config
from bridge.errors import ClientError
from bridge.frame import FrameKind, make_frame
from bridge.pacing import FlushPacer
from bridge.sender import ParallelSender
from bridge.server import BridgeServer
from bridge.transport import (
    NO_REQUEST,
    BridgeConnection,
    ConnectionSink,
    closed_assembler,
    frame_parser_only,
    negotiated_deflate_bits,
)
from bridge.write_batch import WriteBatch
from tests.bridge.fake_loop import FakeLoop
from tests.support.timing import async_wait_until


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


class Hub:
    """What an attached connection hands the hub."""

    def __init__(self) -> None:
        self.received: list[bytes | str] = []
        self.pongs: list[bytes] = []
        self.closed: list[ClientError] = []
        self.disconnects = 0
        self.got = asyncio.Event()

    def receive(self, client: object, data: bytes | str, now: float) -> None:
        self.received.append(data)
        self.got.set()

    def pong(self, client: object, payload: bytes, now: float) -> None:
        self.pongs.append(payload)
        self.got.set()

    def close(self, client: object, error: ClientError) -> None:
        self.closed.append(error)
        self.got.set()

    def disconnect(self, client: object) -> None:
        self.disconnects += 1

    async def wait_for(self, count: int) -> None:
        """Until `count` messages, pongs and closes arrived in all."""
        async with asyncio.timeout(10):
            while len(self.received) + len(self.pongs) + len(self.closed) < count:
                self.got.clear()
                await self.got.wait()


handshake: list[weakref.ref[Any]] = []
"""Each attached connection's handshake Request and subprotocol selector, weakly."""


@pytest.fixture
async def attached() -> AsyncIterator[tuple[Server, Hub, list[BridgeConnection]]]:
    """A server whose handler attaches each connection to a recording hub."""
    hub, connections = Hub(), list[BridgeConnection]()
    handshake.clear()

    def handler(connection: ServerConnection) -> Awaitable[None]:
        assert isinstance(connection, BridgeConnection)
        connections.append(connection)
        handshake.append(weakref.ref(connection.request))
        handshake.append(weakref.ref(connection.protocol.select_subprotocol.__func__))  # type: ignore[attr-defined]
        return connection.attach(hub, object())  # type: ignore[arg-type]

    server = await serve(
        handler, "127.0.0.1", 0, create_connection=BridgeConnection, ping_interval=None,
        max_queue=4, max_size=2**16, select_subprotocol=lambda _connection, _offered: None,
    )  # fmt: skip
    yield server, hub, connections
    server.close()
    await server.wait_closed()


def port_of(server: Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def attached_client(server: Server, hub: Hub) -> AsyncIterator[ClientConnection]:
    """A client whose first message (b"one") the hub has: its connection is attached."""
    async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
        await ws.send(b"one")
        await hub.wait_for(1)
        yield ws


def masked(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return WsFrame(opcode, data, fin).serialize(mask=True)


async def raw_client(server: Server, *frames: bytes) -> tuple[Any, Any]:
    """A client that writes its handshake request and `frames` in one send, then
    reads the server's 101 response."""
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port_of(server)}/"))
    protocol.send_request(protocol.connect())
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    writer.write(b"".join(protocol.data_to_send()) + b"".join(frames))
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert response.startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_an_attached_connections_messages_reach_the_hub_whole_and_in_order(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, _ = attached
    async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
        await ws.send(b"one")
        await ws.send("two")
        await ws.send([b"thr", b"ee"])  # fragmented: two frames
        await ws.send(b"")
        await hub.wait_for(4)
    assert hub.received == [b"one", "two", b"three", b""]


def awaited_coroutines(task: asyncio.Task[Any]) -> list[str]:
    """The names of the coroutines a suspended task is in, outermost first."""
    names: list[str] = []
    awaiting: Any = task.get_coro()
    while isinstance(awaiting, CoroutineType):
        names.append(awaiting.cr_code.co_name)
        awaiting = awaiting.cr_await
    return names


async def test_an_attached_connections_handler_task_runs_no_reader(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, [] = attached
    async with attached_client(server, hub):
        [task] = server.handler_tasks
        assert awaited_coroutines(task) == ["protocol_handler"]  # websockets' own


async def test_frames_sent_right_behind_the_handshake_request_are_the_first_messages(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, _ = attached
    early = [masked(Opcode.BINARY, b"%d" % n) for n in range(10)]  # over max_queue: paused
    _reader, writer = await raw_client(server, *early)
    writer.write(masked(Opcode.BINARY, b"late"))
    await hub.wait_for(11)
    assert hub.received == [b"%d" % n for n in range(10)] + [b"late"]
    writer.close()


async def test_a_pong_is_reported_to_the_hub(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, _ = attached
    _reader, writer = await raw_client(server)
    writer.write(masked(Opcode.PONG, b"\x00\x01\x02\x03"))
    await hub.wait_for(1)
    assert hub.pongs == [b"\x00\x01\x02\x03"] and hub.received == []
    writer.close()


async def test_a_text_message_that_is_not_utf8_is_closed_as_malformed(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, _ = attached
    _reader, writer = await raw_client(server, masked(Opcode.TEXT, b"\xff\xfe"))
    await hub.wait_for(1)
    [error] = hub.closed
    assert error.code == 1007 and hub.received == []
    writer.close()


async def test_a_message_in_too_many_fragments_fails_the_connection_with_1009(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, [] = attached
    fragments = [masked(Opcode.BINARY, b"x", fin=False)]
    fragments += [masked(Opcode.CONT, b"x", fin=False)] * MAX_FRAGMENTS
    reader, writer = await raw_client(server, *fragments)
    closing = await asyncio.wait_for(reader.read(100), 10)
    assert closing[0] == 0x88 and int.from_bytes(closing[2:4], "big") == 1009
    assert hub.received == [] and hub.disconnects >= 1
    writer.close()


async def test_cancelling_the_handler_task_leaves_closing_working(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, connections = attached
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    async with attached_client(server, hub) as ws:
        [task] = server.handler_tasks
        task.cancel()
        await asyncio.wait([task], timeout=10)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    [connection] = connections
    await asyncio.wait_for(connection.wait_closed(), 10)
    assert errors == [] and hub.disconnects >= 1


async def test_an_attached_connection_keeps_nothing_of_its_handshake(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, connections = attached
    async with attached_client(server, hub) as ws:
        [connection] = connections
        assert connection.request is NO_REQUEST and connection.response is None
        # The handshake parser (whose frame holds the Request) was swapped for the
        # plain frame parser: if websockets changes its parsers, this says so.
        assert connection.protocol.parser.gi_code is WsProtocol.parse.__code__  # type: ignore[attr-defined]
        gc.collect()
        assert [ref() for ref in handshake] == [None, None]
        await ws.send([b"after ", b"the swap"])
        assert await ws.ping() is not None
        await hub.wait_for(2)
    assert hub.received == [b"one", b"after the swap"]


async def test_a_frame_half_received_when_attaching_is_kept_whole(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, connections = attached
    frame = masked(Opcode.BINARY, b"split across the attach")
    _reader, writer = await raw_client(server, frame[:5])
    [connection] = connections
    assert connection.protocol.parser.gi_code is ServerProtocol.parse.__code__  # type: ignore[attr-defined]
    writer.write(frame[5:])
    await hub.wait_for(1)
    assert hub.received == [b"split across the attach"]
    writer.close()


def test_the_frame_parser_is_swapped_only_between_frames() -> None:
    protocol = ServerProtocol()
    protocol.receive_data(handshake_request())
    [request] = protocol.events_received()
    assert isinstance(request, Request)
    protocol.send_response(protocol.accept(request))
    frame = masked(Opcode.BINARY, b"payload")
    protocol.receive_data(frame[:3])
    frame_parser_only(protocol)
    assert protocol.parser.gi_code is ServerProtocol.parse.__code__  # type: ignore[attr-defined]
    protocol.receive_data(frame[3:])
    frame_parser_only(protocol)
    assert protocol.parser.gi_code is WsProtocol.parse.__code__  # type: ignore[attr-defined]
    protocol.receive_data(masked(Opcode.BINARY, b"next", fin=False))
    protocol.receive_data(masked(Opcode.CONT, b" one"))
    assert [bytes(event.data) for event in protocol.events_received()] == [  # type: ignore[union-attr]
        b"payload",
        b"next",
        b" one",
    ]


def handshake_request() -> bytes:
    client = ClientProtocol(parse_uri("ws://127.0.0.1:1/"))
    client.send_request(client.connect())
    return b"".join(client.data_to_send())


async def test_attached_connections_share_one_closed_assembler_and_recv_waits_for_the_close(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, connections = attached
    async with (
        connect(f"ws://127.0.0.1:{port_of(server)}/") as one,
        connect(f"ws://127.0.0.1:{port_of(server)}/") as two,
    ):
        await one.send(b"1")
        await two.send(b"2")
        await hub.wait_for(2)
        assert [c.recv_messages for c in connections] == [closed_assembler()] * 2
        recv = asyncio.create_task(connections[0].recv())
        await asyncio.sleep(0.05)
        assert not recv.done()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(recv, 10)


async def test_drain_waits_on_a_list_of_waiters_until_writing_resumes(
    attached: tuple[Server, Hub, list[BridgeConnection]],
) -> None:
    server, hub, connections = attached
    async with attached_client(server, hub):
        [connection] = connections
        connection.pause_writing()
        drain = asyncio.create_task(connection.drain())
        await asyncio.sleep(0.05)
        assert not drain.done() and len(connection.drain_waiters) == 1
        connection.resume_writing()
        await asyncio.wait_for(drain, 10)
        assert len(connection.drain_waiters) == 0


UPGRADE = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: metrics-bridge.v1\r\n{extensions}\r\n"
)


def open_idle_clients(port: int, count: int, deflate: bool) -> list[socket.socket]:
    """Blocking clients that complete the handshake, then never read or write."""
    extensions = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(UPGRADE.format(extensions=extensions).encode())
        assert client.recv(4096).startswith(b"HTTP/1.1 101")
        clients.append(client)
    return clients


@pytest.mark.parametrize("compression", ["none", "deflate"])
async def test_an_idle_connection_allocates_under_6_kib_in_the_bridge(compression: str) -> None:
    """Python allocations per greeted, idle connection (tracemalloc), the clients' own
    excluded: 5.4 KB on CPython 3.11 with websockets 17, 8.1 KB before the steps of
    issue 12 (a reader task chain, the handshake's Request and parser, recv()'s
    assembler). A library update that brings any of them back fails here."""
    config = parse_config(
        ["--listen", "127.0.0.1:0", "--collector", "c1=127.0.0.1:1", "--compression", compression],
        env={},
    )
    bridge = BridgeServer(config)
    await bridge.start()
    port, count = bridge.address[1], 200
    clients = await asyncio.to_thread(open_idle_clients, port, 20, compression == "deflate")
    try:
        tracemalloc.start(10)
        gc.collect()
        before = tracemalloc.take_snapshot()
        clients += await asyncio.to_thread(open_idle_clients, port, count, compression == "deflate")
        await async_wait_until(
            lambda: len(bridge.hub.clients) == count + 20, 10, "every client greeted"
        )
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        for client in clients:
            client.close()
        await bridge.stop()
    ours = [tracemalloc.Filter(False, __file__, all_frames=True)]
    grown = after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename")
    assert sum(stat.size_diff for stat in grown) / count < 6 * 1024
