"""The bridge process: websockets and grpc.aio glue around the Hub.

Per connection there is one task, the websockets handler reading client
messages; the hub's writes go straight to the connection's socket (the
transport's write buffer is the client's bounded outbound buffer), batched so
that every frame written to a connection during one event-loop iteration
leaves in one send(), and the sends of a batch spread over `--send-threads`
threads; one hub-wide timer task sends heartbeats and pings for everyone.
Frames (and pings) are pre-encoded WebSocket frames written whole, which is
safe because the bridge never sends fragmented messages and every write (ours
and the library's control frames) happens while the event loop waits for it.
With --compression deflate, permessage-deflate is negotiated without context
takeover, so each frame is compressed once for every such connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN, Event
from websockets.typing import Subprotocol

from bridge.config import BridgeConfig
from bridge.errors import ClientError, CloseCode, InternalError, MissingSubprotocol, clip_reason
from bridge.frame import Frame, deflated_wire, ping_frame
from bridge.http import DEFAULT_STATIC_DIR, HttpRoutes
from bridge.hub import PROTOCOL, Client, ClientPolicy, Hub
from bridge.pacing import FlushPacer
from bridge.prometheus import metrics_endpoint
from bridge.sender import ParallelSender
from bridge.session import Limits, Timers
from bridge.upstream import Upstream

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
SHUTDOWN_TIMEOUT = 10.0


def server_version() -> str:
    try:
        return metadata.version("metrics-bridge")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class BridgeConnection(ServerConnection):
    """A ServerConnection that reports pongs to the hub, leaves the hub as soon as it
    stops being OPEN, and caps its kernel send buffer."""

    client: Client | None = None
    hub: Hub | None = None
    send_buffer_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A fixed SO_SNDBUF stops Linux from growing it to megabytes for a peer
        # that does not read, so "falling behind" is seen by the bridge early
        # and kernel memory per connection stays bounded.
        if self.send_buffer_bytes:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        super().connection_made(transport)

    def process_event(self, event: Event) -> None:
        super().process_event(event)
        if (
            isinstance(event, WsFrame)
            and event.opcode is Opcode.PONG
            and self.client is not None
            and self.hub is not None
        ):
            self.hub.pong(self.client, bytes(event.data), self.loop.time())

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.client is not None and self.hub is not None and self.protocol.state is not OPEN:
            self.hub.disconnect(self.client)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.client is not None and self.hub is not None:
            self.hub.disconnect(self.client)


class WriteBatch:
    """Frames written to a connection before a flush leave in one write.

    A burst of messages then costs one send() per connection instead of one per
    message. A batch is flushed at the end of the event-loop iteration, or a
    little later when the bridge is behind (`FlushPacer`); its sends are
    spread over the `ParallelSender`'s threads.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sender: ParallelSender, pacer: FlushPacer
    ) -> None:
        self.loop = loop
        self.sender = sender
        self.pacer = pacer
        self.dirty: list[ConnectionSink] = []

    def mark(self, sink: ConnectionSink) -> None:
        if not self.dirty:
            delay = self.pacer.delay(self.loop.time())
            if delay > 0:
                self.loop.call_later(delay, self.flush)
            else:
                self.loop.call_soon(self.flush)
        self.dirty.append(sink)

    def flush(self) -> None:
        started = self.loop.time()
        dirty, self.dirty = self.dirty, []
        fds: list[int] = []
        chunks: list[bytes] = []
        direct: list[ConnectionSink] = []
        for sink in dirty:
            data = sink.take()
            if data is None:
                continue
            transport = sink.transport
            if sink.fd < 0 or transport.get_write_buffer_size():
                transport.write(data)
            else:
                fds.append(sink.fd)
                chunks.append(data)
                direct.append(sink)
        if direct:
            written = self.sender.send(fds, chunks)
            for sink, data, count in zip(direct, chunks, written, strict=True):
                if count != len(data):
                    sink.transport.write(data[max(count, 0) :])
        self.pacer.flushed(started, self.loop.time())


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
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._closing: asyncio.Task[None] | None = None

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() + self._pending_bytes

    def write(self, frame: Frame) -> int:
        wire = deflated_wire(frame, self.deflate_bits) if self.deflate_bits else frame.wire
        self._append(wire)
        return len(wire)

    def _append(self, data: bytes) -> None:
        if not self._pending:
            self._batch.mark(self)
        self._pending.append(data)
        self._pending_bytes += len(data)

    def take(self) -> bytes | None:
        """What is pending, as one chunk; None if nothing or no longer open."""
        pending = self._pending
        self._pending = []
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
    no zlib state."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True
    )


class BridgeServer:
    """The hub, its WebSocket server, its upstreams and its timer."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.hub = Hub(
            limits=Limits(
                max_message_bytes=config.max_message_bytes,
                max_subscriptions=config.max_subscriptions,
                resume_window=config.resume_window,
                messages_per_second=config.max_client_rate,
            ),
            timers=Timers(
                heartbeat_interval=config.heartbeat,
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
            ),
            policy=ClientPolicy(
                buffer_bytes=config.client_buffer_bytes,
                slow_timeout=config.slow_client_timeout,
            ),
            max_connections=config.max_connections,
            server_version=server_version(),
        )
        names: set[str] = set()
        self.upstreams = [
            Upstream(target, self.hub, names, self.loop.time) for target in config.collectors
        ]
        static_dir = Path(config.static_dir) if config.static_dir else DEFAULT_STATIC_DIR
        self.http = HttpRoutes(
            static_dir,
            lambda: any(u.live for u in self.upstreams),
            metrics=metrics_endpoint(self.hub, lambda: self.upstreams),
        )
        self.tick_interval = min(0.25, max(0.02, min(config.heartbeat, config.ping_interval) / 4))
        self._tasks: list[asyncio.Task[None]] = []
        self.server: Server | None = None
        self.sender = ParallelSender(config.send_threads)
        self.batch = WriteBatch(self.loop, self.sender, FlushPacer())

    def select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        if PROTOCOL in offered:
            return Subprotocol(PROTOCOL)
        if not offered:
            return None  # accepted, then closed with 1008 so that a browser sees why
        raise NegotiationError(
            f"unsupported subprotocol {', '.join(offered)}; this bridge speaks {PROTOCOL}"
        )

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        return self.http.handle(request)

    async def handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, BridgeConnection)
        if connection.subprotocol is None:
            error: ClientError = MissingSubprotocol(
                f"offer the WebSocket subprotocol {PROTOCOL} (Sec-WebSocket-Protocol)"
            )
            await connection.close(error.code, error.reason)
            return
        sink = ConnectionSink(connection, self.batch)
        try:
            client = self.hub.connect(sink, self.loop.time())
        except ClientError as exc:
            await connection.close(exc.code, exc.reason)
            return
        connection.hub = self.hub
        connection.client = client
        try:
            while True:
                data = await connection.recv()
                self.hub.receive(client, data, self.loop.time())
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("internal error on connection %s", connection.id)
            self.hub.close(client, InternalError("internal error"))
        finally:
            self.hub.disconnect(client)
        await connection.wait_closed()

    async def start(self) -> None:
        config = self.config

        class Connection(BridgeConnection):
            send_buffer_bytes = config.send_buffer_bytes

        self.server = await serve(
            self.handle,
            config.listen.host,
            config.listen.port,
            create_connection=Connection,
            select_subprotocol=self.select_subprotocol,
            process_request=self.process_request,
            compression=None,
            extensions=[deflate_factory()] if config.compression == "deflate" else None,
            open_timeout=config.handshake_timeout,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT,
            max_size=config.max_message_bytes,
            max_queue=8,
            write_limit=config.client_buffer_bytes,
            server_header=None,
        )
        for upstream in self.upstreams:
            self._tasks.append(self.loop.create_task(upstream.run()))
        self._tasks.append(self.loop.create_task(self._tick()))

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.hub.tick(self.loop.time())
            except Exception:
                log.exception("hub tick failed")

    async def stop(self) -> None:
        """Close every client with 1001, stop the upstreams, the server and the senders."""
        self.hub.close_all(CloseCode.GOING_AWAY, "bridge shutting down")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await self.server.wait_closed()
            except TimeoutError:
                log.warning("connections still open after %.0fs; exiting", SHUTDOWN_TIMEOUT)
        self.sender.close()


def write_ready_file(path: str, host: str, port: int) -> None:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    content = json.dumps({"ws": address, "url": f"ws://{address}/"})
    temporary = f"{path}.tmp"
    Path(temporary).write_text(content)
    os.replace(temporary, path)


async def run(config: BridgeConfig) -> None:
    bridge = BridgeServer(config)
    await bridge.start()
    host, port = bridge.address
    log.info("serving ws://%s:%d/ (subprotocol %s)", host, port, PROTOCOL)
    if config.ready_file:
        write_ready_file(config.ready_file, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        bridge.loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await bridge.stop()


def serve_forever(config: BridgeConfig) -> Any:
    return asyncio.run(run(config))
