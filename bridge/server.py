"""The bridge process: websockets and grpc.aio glue around the Hub.

Per connection there is one task, the websockets handler reading client
messages; the hub's writes go straight to the connection's transport (its
write buffer is the client's bounded outbound buffer), batched so that every
frame written to a connection during one event-loop iteration leaves in one
send(); one hub-wide timer task sends heartbeats and pings for everyone.
Frames are pre-encoded WebSocket frames written with `transport.write`, which
is safe because the bridge never sends fragmented messages and every write
(ours and the library's control frames) happens whole on the event loop.
A connection that negotiated permessage-deflate (only with --compression
deflate) goes through the library's encoder instead.
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
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN, Event
from websockets.typing import Subprotocol

from bridge.config import BridgeConfig
from bridge.errors import ClientError, CloseCode, InternalError, MissingSubprotocol, clip_reason
from bridge.frame import Frame
from bridge.http import DEFAULT_STATIC_DIR, HttpRoutes
from bridge.hub import PROTOCOL, Client, ClientPolicy, Hub
from bridge.prometheus import metrics_endpoint
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
    """Frames written to a connection during one event-loop iteration leave in one write.

    A burst of messages then costs one send() per connection instead of one per
    message; a lone message waits only for the current iteration to end.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[ConnectionSink] = []

    def mark(self, sink: ConnectionSink) -> None:
        if not self.dirty:
            self.loop.call_soon(self.flush)
        self.dirty.append(sink)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for sink in dirty:
            sink.flush()


class ConnectionSink:
    """The hub's view of one connection: buffer size, frame writes, ping and close."""

    __slots__ = (
        "_batch",
        "_closing",
        "_pending",
        "_pending_bytes",
        "connection",
        "raw",
        "transport",
    )

    def __init__(self, connection: BridgeConnection, batch: WriteBatch) -> None:
        self.connection = connection
        self.transport = connection.transport
        self.raw = not connection.protocol.extensions
        self._batch = batch
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._closing: asyncio.Task[None] | None = None

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() + self._pending_bytes

    def write(self, frame: Frame) -> None:
        if self.raw:
            if not self._pending:
                self._batch.mark(self)
            self._pending.append(frame.wire)
            self._pending_bytes += len(frame.wire)
        elif self.connection.protocol.state is OPEN:
            self.connection.protocol.send_binary(frame.payload)
            self.connection.send_data()

    def flush(self) -> None:
        pending = self._pending
        self._pending = []
        self._pending_bytes = 0
        # Data must never follow a close frame: drop what is left once closing.
        if pending and self.connection.protocol.state is OPEN:
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def ping(self, payload: bytes) -> None:
        connection = self.connection
        if connection.protocol.state is OPEN:
            connection.protocol.send_ping(payload)
            connection.send_data()

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        # Connection.close() waits for the write buffer to drain, forever for a
        # peer that stopped reading: bound it and abort.
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.connection.close(code, clip_reason(reason))
        except TimeoutError:
            self.transport.abort()


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
        self.batch = WriteBatch(self.loop)

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
            compression="deflate" if config.compression == "deflate" else None,
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
        """Close every client with 1001, stop the upstreams and the server."""
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
