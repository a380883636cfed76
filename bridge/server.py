"""The bridge process: the hub, its WebSocket server, its upstreams and its timer.

The node wires the parts together and owns their lifetimes:
- the WebSocket server (websockets' asyncio API) accepts connections; a
  connection's messages reach the hub as they are parsed (its handler task
  only waits for it to end), and the hub's frames leave through
  `ConnectionSink`s gathered by one `WriteBatch` (bridge/transport.py,
  bridge/write_batch.py), whose sends spread over `--send-threads` threads;
- plain HTTP requests on the same port go to `HttpRoutes` (health,
  readiness, Prometheus metrics, the dashboard's files);
- one `Upstream` task per collector follows its Subscribe stream, which is
  read on a thread of its own (bridge/stream_reader.py);
- one hub-wide timer task sends heartbeats and pings for everyone;
- access control (bridge/security.py builds it): a WebSocket handshake with
  an Origin outside the allowlist gets HTTP 403 before the upgrade; with
  `--auth jwt` the hub waits for each connection's Connect{token};
  `--tls-cert`/`--tls-key` serve wss:// and https:// on the same port, and
  SIGHUP reloads them for new connections while open ones carry on.
- descriptors (metrics_shared/fd_limit.py): the soft open-file limit is
  raised to the hard one at start, connections are capped at what fits under
  it (said at start), and refusals are logged once per burst, including
  asyncio's failed accepts when descriptors run out.
On SIGTERM or SIGINT every client is closed with 1001 and the process exits.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Awaitable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from bridge.channel_resync import ChannelResyncs
from bridge.config import BridgeConfig
from bridge.dns_upstreams import DnsUpstreams
from bridge.errors import ClientError, CloseCode, MissingSubprotocol
from bridge.http import DEFAULT_STATIC_DIR, HttpRoutes
from bridge.hub import PROTOCOL, Hub
from bridge.pacing import FlushPacer
from bridge.prometheus import metrics_endpoint
from bridge.security import TlsFiles, access_for, origin_policy_for
from bridge.sender import ParallelSender
from bridge.transport import CLOSE_TIMEOUT, BridgeConnection, ConnectionSink, deflate_factory
from bridge.upstream import Upstream
from bridge.upstream_rules import CollectorNames
from bridge.write_batch import WriteBatch
from metrics_shared.address import Address
from metrics_shared.fd_limit import RefusalLog, connection_cap, headroom, raise_open_file_limit
from metrics_shared.ready_file import write_ready_file
from metrics_shared.stop_signals import on_stop_signal
from metrics_shared.version import package_version

__all__ = ["BridgeServer", "run", "serve_forever", "server_version"]

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096
"""Connections the kernel may hold waiting for accept (before net.core.somaxconn caps it)."""

SHUTDOWN_TIMEOUT = 10.0


def server_version() -> str:
    """Hello's server_version: the package metadata's version (metrics_shared/version.py)."""
    return package_version()


class BridgeServer:
    """The hub, its WebSocket server, its upstreams and its timer."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        # One descriptor per client: serve at most what the open-file limit allows.
        self.fd_limit = raise_open_file_limit()
        self.fd_reserve = headroom(len(config.collectors))
        self.connection_cap = connection_cap(
            config.max_connections, self.fd_limit.soft, self.fd_reserve
        )
        self.capacity_refusals = RefusalLog()
        self.hub = Hub(
            limits=config.limits(),
            timers=config.timers(),
            policy=config.client_policy(),
            max_connections=self.connection_cap.allowed,
            server_version=server_version(),
            access=access_for(config),
            token_timeout=config.token_timeout,
            history=config.history_limits(),
        )
        self.origins = origin_policy_for(config)
        self.tls = (
            TlsFiles(config.tls_cert, config.tls_key)
            if config.tls_cert and config.tls_key
            else None
        )
        self.scheme = "https" if self.tls else "http"
        names = CollectorNames()
        self.upstreams = [
            Upstream(target, self.hub, names, self.loop.time)
            for target in config.collectors
            if not target.resolve
        ]
        self.dns_targets = [
            DnsUpstreams(
                target,
                self.hub,
                names,
                self.loop.time,
                self.upstreams,
                config.collector_resolve_interval,
            )
            for target in config.collectors
            if target.resolve
        ]
        static_dir = Path(config.static_dir) if config.static_dir else DEFAULT_STATIC_DIR
        self.http = HttpRoutes(
            static_dir,
            lambda: any(u.live for u in self.upstreams),
            metrics=metrics_endpoint(self.hub, lambda: self.upstreams),
        )
        self.resyncs = ChannelResyncs(self.hub, lambda: self.upstreams, self.loop.time)
        self.tick_interval = min(0.25, max(0.02, min(config.heartbeat, config.ping_interval) / 4))
        self._tasks: list[asyncio.Task[None]] = []
        self.server: Server | None = None
        self.sender = ParallelSender(config.send_threads)
        self.batch = WriteBatch(self.loop, self.sender, FlushPacer(), self.hub.hops.flush)

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
            # Over the cap the hub closes with 1013 after the upgrade (a browser learns
            # why); once those refusals in flight eat half the headroom: 503 before it.
            cap = self.hub.max_connections
            if self.server is not None and len(self.server.all_connections) >= cap + max(
                1, self.fd_reserve // 2
            ):
                self.hub.counters.connections_rejected_capacity += 1
                self._log_capacity_refusal()
                return connection.respond(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    f"at capacity ({cap} connections): retry later\n",
                )
            origin = request.headers.get("Origin")
            if self.origins.allows(origin, self.scheme, request.headers.get("Host")):
                return None
            self.hub.counters.refused("origin")
            log.info("refused a WebSocket from Origin %s", origin)
            return connection.respond(HTTPStatus.FORBIDDEN, f"Origin {origin} is not allowed\n")
        return self.http.handle(request)

    def handle(self, connection: ServerConnection) -> Awaitable[None]:
        """The connection's handler: join the hub, then wait for the connection to be
        lost. Not a coroutine: what it returns is all the handler task awaits while
        the connection is open (bridge/transport.py reads its messages)."""
        assert isinstance(connection, BridgeConnection)
        if connection.subprotocol is None:
            error: ClientError = MissingSubprotocol(
                f"offer the WebSocket subprotocol {PROTOCOL} (Sec-WebSocket-Protocol)"
            )
            return connection.close(error.code, error.reason)
        sink = ConnectionSink(connection, self.batch)
        try:
            client = self.hub.connect(sink, self.loop.time())
        except ClientError as exc:
            if exc.code == CloseCode.TRY_AGAIN_LATER:
                self._log_capacity_refusal()
            return connection.close(exc.code, exc.reason)
        return connection.attach(self.hub, client)

    def _log_capacity_refusal(self) -> None:
        if self.capacity_refusals.refused(self.loop.time()):
            log.warning(
                "at capacity (%d connections): refusing new clients with 503/1013; "
                "further refusals in this burst are only counted "
                "(metrics_bridge_connections_rejected_capacity_total)",
                self.hub.max_connections,
            )

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Out of descriptors, asyncio pauses accepting for a second and reports each
        failed accept with a traceback: one line per burst instead."""
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
            if self.capacity_refusals.refused(loop.time()):
                log.warning(
                    "out of file descriptors (limit %d): accepting paused; raise the limit "
                    "or lower --max-connections",
                    self.fd_limit.soft,
                )
            return
        loop.default_exception_handler(context)

    async def start(self) -> None:
        self.loop.set_exception_handler(self._loop_exception)
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
            ssl=self.tls.context if self.tls else None,
            # asyncio's default backlog (100) drops the SYNs of a reconnect
            # storm, which then retry a second or more later; the kernel caps
            # it at net.core.somaxconn.
            backlog=min(config.max_connections, LISTEN_BACKLOG),
        )
        for upstream in self.upstreams:
            self._tasks.append(self.loop.create_task(upstream.run()))
        for dns in self.dns_targets:
            self._tasks.append(self.loop.create_task(dns.run()))
        self._tasks.append(self.loop.create_task(self._tick()))
        self._tasks.append(self.loop.create_task(self.resyncs.run()))

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


async def run(config: BridgeConfig) -> None:
    bridge = BridgeServer(config)
    await bridge.start()
    host, port = bridge.address
    if bridge.connection_cap.warning:
        log.warning("%s", bridge.connection_cap.warning)
    limit = bridge.fd_limit
    log.info("open-file limit %d (hard %d, was %d)", limit.soft, limit.hard, limit.before)
    ws = "wss" if bridge.tls else "ws"
    log.info("serving %s://%s:%d/ (subprotocol %s)", ws, host, port, PROTOCOL)
    log.info("auth: %s", config.auth)
    if config.auth == "none" and not config.on_loopback:
        log.warning(
            "--allow-anonymous: anyone who reaches %s may read every channel without a token",
            config.listen,
        )
    if config.ready_file:
        address = str(Address(host, port))
        write_ready_file(config.ready_file, {"ws": address, "url": f"{ws}://{address}/"})
    stop = asyncio.Event()
    on_stop_signal(bridge.loop, stop.set)
    if bridge.tls is not None:
        bridge.loop.add_signal_handler(signal.SIGHUP, bridge.tls.reload)
    await stop.wait()
    log.info("shutting down")
    await bridge.stop()


def serve_forever(config: BridgeConfig) -> Any:
    return asyncio.run(run(config))
