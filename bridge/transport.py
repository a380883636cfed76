"""One client's WebSocket connection as the hub sees it: frames in, pongs and closes out.

The hub's writes go straight to the connection's socket, never through the
library's encoder: frames (and pings) are pre-encoded WebSocket frames written
whole, gathered by the `WriteBatch` so that every frame written to a
connection during one event-loop iteration leaves in one send(). The
transport's write buffer is the client's bounded outbound buffer.

Rules:
- Writing pre-encoded frames is safe because the bridge never sends
  fragmented messages and every write (ours and the library's control
  frames) happens on the event loop.
- Nothing is written once the connection stops being OPEN; frames pending
  when the hub closes a connection go out before the close frame.
- A connection leaves the hub as soon as it stops being OPEN (close frame
  received or connection lost).
- An attached connection's messages go to the hub as their last frame is
  parsed, as `recv()` would return them (fragments joined, text decoded:
  invalid UTF-8 closes with 1007, over websockets' MAX_FRAGMENTS with 1009);
  no task reads it, and it keeps nothing only the handshake needed (its
  Request and parser, the subprotocol closure, recv()'s assembler): an idle
  connection's memory is the point (issue 12).
- permessage-deflate is accepted only without context takeover on either
  side, so each frame is compressed once for every such connection and an
  idle connection holds no zlib state.
- Closing waits at most `CLOSE_TIMEOUT` for the peer, then aborts.
- `ConnectionSink.queued_total` counts every byte ever queued (pending batch
  and written), so `queued_total - buffered()` is what has left for the
  kernel: the hub measures a client's drain rate from it (bridge/outbound.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.messages import MAX_FRAGMENTS, Assembler
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import DATA_OPCODES, CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.http11 import Request
from websockets.protocol import OPEN, Event, Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from bridge.errors import InternalError, MalformedMessage, clip_reason
from bridge.frame import Frame, deflated_wire, ping_frame
from bridge.hub import Client, Hub
from bridge.write_batch import WriteBatch

__all__ = [
    "CLOSE_TIMEOUT",
    "BridgeConnection",
    "ConnectionSink",
    "closed_assembler",
    "deflate_factory",
    "frame_parser_only",
    "negotiated_deflate_bits",
]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
NO_REQUEST = Request("/", Headers())
"""What an open connection holds instead of its handshake request."""


class BridgeConnection(ServerConnection):
    """A ServerConnection whose messages go straight to the hub once it joins it
    (`attach`), which reports pongs to the hub, leaves the hub as soon as it stops
    being OPEN, and caps its kernel send buffer.

    An attached connection has no task reading it: each complete message is handed
    to the hub as its last frame is parsed (fragments are joined here, as
    websockets' `recv()` would), and the connection's handler only waits for the
    connection to be lost (`attach` returns what it awaits)."""

    client: Client | None = None
    hub: Hub | None = None
    send_buffer_bytes = 0
    _fragments: list[WsFrame] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A fixed SO_SNDBUF stops Linux from growing it to megabytes for a peer
        # that does not read, so "falling behind" is seen by the bridge early
        # and kernel memory per connection stays bounded.
        if self.send_buffer_bytes:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        super().connection_made(transport)
        # An empty deque costs ~760 bytes (one 64-slot block); websockets only
        # appends, removes and iterates a connection's drain waiters, nearly
        # always none or one: a list does.
        waiters: Any = []  # typed as a deque by websockets
        self.drain_waiters = waiters

    def attach(self, hub: Hub, client: Client) -> asyncio.Future[None]:
        """Join the hub as `client`: from now on its messages go to `hub.receive`
        (`recv()` has nothing to return; it raises once the connection is closed).
        Returns the future the connection's handler awaits: done when the
        connection is lost (the handler returning would close the connection)."""
        self.hub = hub
        self.client = client
        self.forget_handshake()
        # Frames a client sent right behind its handshake request were queued
        # for recv(): they are the first messages. recv()'s assembler (with its
        # queue and flow-control callbacks) gives way to one shared closed one.
        assembler = self.recv_messages
        self.recv_messages = closed_assembler()
        if assembler.paused:
            self.transport.resume_reading()
        for frame in assembler.frames.queue:
            self._receive_frame(frame)
        return self.connection_lost_waiter

    def forget_handshake(self) -> None:
        """Drop what only the handshake needed (about 4 KiB with the headers):
        the Request and Response, the subprotocol selector's closure, and the
        handshake parser's generator, which holds the Request (see
        `frame_parser_only`). websockets tells the handshake from later events by
        `request is None`, so the request becomes one shared empty Request."""
        self.request = NO_REQUEST
        self.response = None
        with contextlib.suppress(AttributeError):  # a done future only handshake() awaits
            del self.request_rcvd
        with contextlib.suppress(AttributeError):  # the per-connection closure serve() bound
            del self.protocol.select_subprotocol
        frame_parser_only(self.protocol)

    def process_event(self, event: Event) -> None:
        if self.client is None or not isinstance(event, WsFrame):
            super().process_event(event)  # the handshake request, or frames before attach
        elif event.opcode in DATA_OPCODES:
            self._receive_frame(event)
        else:
            super().process_event(event)
            if event.opcode is Opcode.PONG and self.hub is not None:
                self.hub.pong(self.client, bytes(event.data), self.loop.time())

    def _receive_frame(self, frame: WsFrame) -> None:
        """Join a message's frames and hand it to the hub, as `recv()` would."""
        if frame.opcode is Opcode.CONT or not frame.fin:
            fragments = self._fragments
            if frame.opcode is not Opcode.CONT or fragments is None:
                self._fragments = fragments = []
            fragments.append(frame)
            if len(fragments) > MAX_FRAGMENTS:
                self._fragments = None
                self.protocol.fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
                self.send_data()
                self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
                if self.hub is not None and self.client is not None:
                    self.hub.disconnect(self.client)
                return
            if not frame.fin:
                return
            self._fragments = None
            text = fragments[0].opcode is Opcode.TEXT
            data = b"".join(part.data for part in fragments)
        else:
            text = frame.opcode is Opcode.TEXT
            data = bytes(frame.data)
        self._deliver(data, text)

    def _deliver(self, data: bytes, text: bool) -> None:
        client, hub = self.client, self.hub
        if client is None or hub is None or self.protocol.state is not OPEN:
            return
        try:
            if text:
                try:
                    message: bytes | str = data.decode()
                except UnicodeDecodeError as exc:
                    hub.close(client, MalformedMessage(f"{exc.reason} at position {exc.start}"))
                    return
            else:
                message = data
            hub.receive(client, message, self.loop.time())
        except Exception:
            log.exception("internal error on connection %s", self.id)
            hub.close(client, InternalError("internal error"))

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.client is not None and self.hub is not None and self.protocol.state is not OPEN:
            self.hub.disconnect(self.client)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection_lost_waiter.cancelled():
            # The handler task awaits this future itself (see attach): cancelling the
            # task cancelled it, and websockets sets its result below.
            self.connection_lost_waiter = self.loop.create_future()
        super().connection_lost(exc)
        if self.client is not None and self.hub is not None:
            self.hub.disconnect(self.client)


_closed_assembler: list[Assembler] = []


def closed_assembler() -> Assembler:
    """One closed Assembler shared by every attached connection: `recv()` on it
    finds no message and waits for the connection to close, `close()` is a no-op."""
    if not _closed_assembler:
        assembler = Assembler()
        assembler.close()
        _closed_assembler.append(assembler)
    return _closed_assembler[0]


def frame_parser_only(protocol: Protocol) -> None:
    """Swap a server protocol's parser, `ServerProtocol.parse` (the handshake, then
    `Protocol.parse` for frames, with the handshake Request still among its
    locals), for a plain `Protocol.parse`, when it waits between two frames (for
    more data, the stream reader's buffer empty): nothing of its state is lost
    then. websockets swaps parsers the same way (for `discard()` on closing)."""
    outer = protocol.parser
    frames = getattr(outer, "gi_yieldfrom", None)
    waiting = getattr(frames, "gi_yieldfrom", None)
    if (
        getattr(outer, "gi_code", None) is ServerProtocol.parse.__code__
        and getattr(frames, "gi_code", None) is Protocol.parse.__code__
        and getattr(waiting, "gi_code", None) is StreamReader.at_eof.__code__
        and not protocol.reader.buffer
    ):
        parser = Protocol.parse(protocol)
        next(parser)
        protocol.parser = parser


class ConnectionSink:
    """The hub's view of one connection: buffer size, frame writes, ping and close.

    Frames are written as the pre-built bytes (compressed once per frame for a
    connection that negotiated permessage-deflate, which the bridge only
    accepts without context takeover), never through the library's encoder.
    """

    __slots__ = (
        "_batch",
        "_closing",
        "_pending",
        "_pending_bytes",
        "connection",
        "deflate_bits",
        "fd",
        "queued_total",
        "transport",
    )

    def __init__(self, connection: BridgeConnection, batch: WriteBatch) -> None:
        self.connection = connection
        self.transport = connection.transport
        # Direct writes to the socket only when the transport adds nothing (no TLS).
        sock = self.transport.get_extra_info("socket")
        plain = sock is not None and self.transport.get_extra_info("sslcontext") is None
        self.fd: int = sock.fileno() if plain else -1
        self.deflate_bits = negotiated_deflate_bits(connection.protocol.extensions)
        self._batch = batch
        self._pending: list[bytes] | None = None  # an idle sink holds no list
        self._pending_bytes = 0
        self.queued_total = 0
        self._closing: asyncio.Task[None] | None = None

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() + self._pending_bytes

    def write(self, frame: Frame) -> int:
        wire = deflated_wire(frame, self.deflate_bits) if self.deflate_bits else frame.wire
        self._append(wire)
        return len(wire)

    def _append(self, data: bytes) -> None:
        if self._pending is None:
            self._batch.mark(self)
            self._pending = [data]
        else:
            self._pending.append(data)
        size = len(data)
        self._pending_bytes += size
        self.queued_total += size

    def take(self) -> bytes | None:
        """What is pending, as one chunk; None if nothing or no longer open."""
        pending = self._pending
        self._pending = None
        self._pending_bytes = 0
        # Data must never follow a close frame: drop what is left once closing.
        if not pending or self.connection.protocol.state is not OPEN or self.transport.is_closing():
            return None
        return pending[0] if len(pending) == 1 else b"".join(pending)

    def ping(self, payload: bytes) -> None:
        self._append(ping_frame(payload))

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            # Frames queued before the close (a paced batch may hold them for a
            # few ms) go out before the close frame.
            data = self.take()
            if data is not None:
                self.transport.write(data)
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        # Connection.close() waits for the write buffer to drain, forever for a
        # peer that stopped reading: bound it and abort.
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.connection.close(code, clip_reason(reason))
        except TimeoutError:
            self.transport.abort()


def negotiated_deflate_bits(extensions: Sequence[Extension]) -> int:
    """The server window of a negotiated permessage-deflate, or 0 if none."""
    for extension in extensions:
        if isinstance(extension, PerMessageDeflate):
            if not extension.local_no_context_takeover:
                raise RuntimeError("permessage-deflate negotiated with context takeover")
            return int(extension.local_max_window_bits)
    return 0


def deflate_factory() -> ServerPerMessageDeflateFactory:
    """permessage-deflate with no context kept on either side between messages:
    frames are compressed once for every client, and an idle connection holds
    no zlib state. Every connection's extension shares one (empty) dict of
    compression settings instead of making its own."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True, compress_settings={}
    )
