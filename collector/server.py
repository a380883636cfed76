"""The collector process: grpc.aio server, host sampling loop, signals.

Transport settings (deliberate, documented in README "Collector configuration"):
- max receive message 4 MiB: bounds one Push batch or OTLP Export request.
- max send message 64 MiB: a snapshot of a source at its series limit fits.
- keepalive: the server pings an idle connection every 30 s and drops it if no
  ack comes within 10 s, so dead subscribers are noticed. Clients may ping as
  often as every 0.5 s, also without active calls, so a bridge's keepalive
  (--upstream-keepalive, 10 s by default, at least 1 s) is never answered with
  GOAWAY too_many_pings; a client pinging faster than that while no data flows
  is sent that GOAWAY after its third early ping (gRPC's ping strikes).

The periodic loop samples the host every --interval seconds and then expires
push/OTLP sources idle for --source-ttl (`CollectorHub.expire`), so expiry
happens within one interval after the ttl has passed.

Shutdown on SIGTERM/SIGINT (handled alike, installed before the ready file is
written): health goes NOT_SERVING, every Subscribe stream ends with OK, the
sampler stops, in-flight calls (Push, health Watch) get --shutdown-grace
seconds, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from collector.config import CollectorConfig
from collector.host import read_host
from collector.hub import CollectorHub
from collector.otlp_http import OtlpHttpEndpoint, OtlpHttpServer, server_ssl_context
from collector.otlp_receiver import OtlpReceiver
from collector.push_auth import PushAccess
from collector.sampler import HostReadings, sample
from collector.security import load_security
from collector.service import SERVICE_NAME, MetricsCollectorService, OtlpMetricsService, now_ms
from metrics_bridge.v1 import metrics_pb2
from metrics_shared.address import Address
from metrics_shared.ready_file import write_ready_file
from metrics_shared.stop_signals import on_stop_signal

__all__ = [
    "MAX_RECEIVE_MESSAGE_BYTES",
    "MAX_SEND_MESSAGE_BYTES",
    "SERVER_OPTIONS",
    "CollectorServer",
]

log = logging.getLogger(__name__)

MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_SEND_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_SEND_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # gRPC core (1.85) waits this long for any ping's ack, keepalive ones
    # included; left unset it waits a minute whatever keepalive_timeout says.
    ("grpc.http2.ping_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # The server-side policy for pings *received* without data in between
    # (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; gRPC's default:
    # 5 minutes). Strikes reset whenever the server sends data.
    ("grpc.http2.min_ping_interval_without_data_ms", 500),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
    # Flow-control windows stay at gRPC's initial 64 KiB instead of growing
    # with bandwidth-delay probing to megabytes: a pusher faster than the
    # collector is held back at its own send (backpressure) rather than
    # queueing seconds of data in the stream, older than any staleness bound
    # (issue 13's overload bench: the Push hop went from 2.6 s to 46 ms p50).
    ("grpc.http2.bdp_probe", 0),
]
OTLP_SERVICE_NAME = metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name


class CollectorServer:
    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.hub = CollectorHub(config.hub_limits(), clock=time.monotonic)
        self.otlp_http: OtlpHttpServer | None = None
        self.addresses: dict[str, str] = {}
        self._stopping: asyncio.Event | None = None
        self._previous: HostReadings | None = None
        self._credentials: grpc.ServerCredentials | None = None

    async def start(self) -> None:
        """Binds, serves, takes SIGTERM/SIGINT, then writes the ready file; call inside
        the event loop that serves."""
        config = self.config
        security = load_security(config)
        self._credentials = security.credentials
        self._stopping = asyncio.Event()
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        # The host source exists before anyone can subscribe.
        self._previous = self._sample_host(None)
        collector = MetricsCollectorService(
            self.hub, config.host_source, config.max_batch_samples, security.access
        )
        self.server.add_generic_rpc_handlers((collector.handler(),))
        receiver = OtlpReceiver(self.hub, config.otlp_rules())
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            OtlpMetricsService(self.hub, security.access, receiver=receiver), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        services = (SERVICE_NAME, OTLP_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(services, self.server)
        self.addresses["grpc"] = self._bind(config.listen)
        if config.otlp_listen is not None:
            self.addresses["otlp"] = self._bind(config.otlp_listen)
        await self.server.start()
        if config.otlp_http_listen is not None:
            self.addresses["otlp_http"] = await self._start_otlp_http(receiver, security.access)
        for service in ("", SERVICE_NAME, OTLP_SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "collector %r serving on %s (%s)",
            config.host_source,
            self.addresses,
            "plaintext"
            if self._credentials is None
            else "TLS" + ("+mTLS" if config.client_ca else ""),
        )
        on_stop_signal(asyncio.get_running_loop(), self.request_stop)
        if config.ready_file:
            write_ready_file(config.ready_file, self.addresses)

    async def _start_otlp_http(self, receiver: OtlpReceiver, access: PushAccess) -> str:
        config = self.config
        assert config.otlp_http_listen is not None
        tls = config.server_tls()
        self.otlp_http = OtlpHttpServer(
            OtlpHttpEndpoint(receiver, access=access, cors_origins=config.otlp_http_cors_origins),
            server_ssl_context(tls.cert, tls.key, tls.client_ca) if tls else None,
        )
        return await self.otlp_http.start(config.otlp_http_listen)

    def _bind(self, address: Address) -> str:
        try:
            if self._credentials is None:
                port = self.server.add_insecure_port(str(address))
            else:
                port = self.server.add_secure_port(str(address), self._credentials)
        except RuntimeError as exc:  # grpc's way of saying the address is taken
            raise OSError(f"cannot listen on {address}: {exc}") from None
        return str(Address(address.host, port))

    def _sample_host(self, previous: HostReadings | None) -> HostReadings:
        readings = read_host()
        self.hub.apply(
            self.config.host_source,
            metrics_pb2.SOURCE_KIND_HOST,
            sample(readings, previous),
            now_ms(),
            received=time.monotonic(),
            replace=True,
        )
        return readings

    async def sample_forever(self) -> None:
        previous = self._previous
        interval = self.config.interval
        next_at = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(next_at - time.monotonic(), 0))
            try:
                readings = await asyncio.to_thread(read_host)
            except Exception:
                log.exception("reading the host failed; trying again next interval")
            else:
                self.hub.apply(
                    self.config.host_source,
                    metrics_pb2.SOURCE_KIND_HOST,
                    sample(readings, previous),
                    now_ms(),
                    received=time.monotonic(),
                    replace=True,
                )
                previous = readings
            self._expire_idle_sources()
            next_at += interval
            if next_at < time.monotonic():  # fell behind (loaded machine): skip, don't burst
                next_at = time.monotonic() + interval

    def _expire_idle_sources(self) -> None:
        for gone in self.hub.expire(time.monotonic(), now_ms()):
            log.info(
                "source %r%s (%s, epoch %d) removed after %.1f s without a batch",
                gone.name,
                "" if gone.instance is None else f": the series of instance {gone.instance!r}",
                metrics_pb2.SourceKind.Name(gone.kind),
                gone.epoch,
                gone.idle_seconds,
            )

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def serve(self) -> None:
        await self.start()
        sampler = asyncio.create_task(self.sample_forever(), name="host-sampler")
        assert self._stopping is not None
        try:
            await self._stopping.wait()
        finally:
            log.info("shutting down: health NOT_SERVING, ending Subscribe streams")
            await self.health.enter_graceful_shutdown()
            self.hub.close()
            sampler.cancel()
            if self.otlp_http is not None:
                await self.otlp_http.close()
            await self.server.stop(self.config.shutdown_grace)
            log.info("stopped")
