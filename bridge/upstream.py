"""Follow one collector over gRPC and feed its raw events to the hub.

One task per collector:
1. ListSources: learns the collector's name (unless configured) and which
   sources it still has; channels of sources it lost are removed.
2. Subscribe to every source, resuming each known channel from its last
   (epoch, seq). A source it has no position for (a fresh bridge), or one the
   collector no longer holds the updates after, starts as far back as the
   collector can replay, up to the bridge's own window (the larger of
   --resume-window and --history-window; `replay_updates`): positions are
   the source's, so clients resume here from positions they had on a bridge
   that has gone (a restart, another replica). The stream's messages stay
   raw bytes (identity deserializer) and the hub parses each once. The
   channels are marked live. The stream is
   read on a thread of its own (`StreamReader`), so events that arrive while
   the loop fans out reach the hub together and leave in one flush. Each
   message is stamped when read; every event of a batch shares the stamp,
   and the hub holds back those that waited past --max-staleness until the
   reader's drain pass ends (`Hub.release_held`).
3. When the stream breaks (the gRPC channel reconnects by itself, a stream
   does not), or the hub reports a gap, the channels are marked stale and the
   task retries after the delay `Retries` gives (bridge/upstream_rules.py):
   short after a round that reached the stream, growing while the collector
   stays unreachable.

A collector that hangs with its TCP connection open (a stopped process, a
frozen VM, a path that silently drops packets) sends nothing and ends nothing.
HTTP/2 keepalive finds it: after `Keepalive.interval` seconds without data the
channel pings, and a ping not acked within `Keepalive.timeout` seconds closes
the connection, so the stream fails with UNAVAILABLE and the channels go stale
with a detail that says so. There is no watchdog on the data itself: the
Subscribe stream has no heartbeat of its own, and a push source may rightly
be silent for long, so silence alone proves nothing.

Every status detail and log line names the collector and its address and says
what happened (`failure_reason`), e.g. "collector c1 at 127.0.0.1:50051 did
not answer keepalive pings within 5 s".

TLS (`CollectorTarget.tls`, from --collector-ca/--collector-cert/--collector-key
or the collector's own ';ca=...' settings): the channel is a secure one, and a
failed handshake is said in words: a certificate the CA did not sign, a
collector that does not speak TLS, or a collector that closed the connection
during the handshake, which with mTLS means it wants a client certificate this
bridge does not present (or does not trust the one it does).

Default collector name: the name the collector reports (its host source), so
every bridge replica names channels alike; if two collectors report the same
name, the later one is named "<name>@<host:port>" and a warning is logged
(`CollectorNames` in bridge/upstream_rules.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import grpc

from bridge.backoff import Backoff
from bridge.config import CollectorTarget, Keepalive
from bridge.errors import UpstreamError
from bridge.event_batch import BATCH_EVENTS, events_of
from bridge.hub import Hub
from bridge.stream_reader import StreamCall, StreamReader
from bridge.upstream_rules import CollectorNames, Retries
from metrics_bridge.v1 import bridge_pb2, collector_pb2, collector_pb2_grpc
from metrics_shared.tls import ClientTls

__all__ = ["Upstream", "channel_options", "failure_reason", "tls_failure"]

log = logging.getLogger(__name__)

SUBSCRIBE_METHOD = "/metrics_bridge.v1.MetricsCollector/Subscribe"
LIST_TIMEOUT = 5.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 120_000),
    # The Subscribe stream's receive window stays at gRPC's initial 64 KiB, as
    # the collector's server keeps its own (collector/server.py): with
    # bandwidth-delay probing it grows to megabytes, and a collector faster than
    # this bridge's reader then parks seconds of updates in the stream, past
    # the collector's staleness bound (its queue stays empty) and before the
    # hand-off's (which counts from the read).
    ("grpc.http2.bdp_probe", 0),
]
# What gRPC core says when a ping went unanswered (grpcio 1.85: "Stream
# removed (ping timeout)"; older cores said "keepalive watchdog timeout").
PING_TIMEOUT_WORDS = ("ping timeout", "keepalive")

LIVE = bridge_pb2.UPSTREAM_STATE_LIVE
STALE = bridge_pb2.UPSTREAM_STATE_STALE


def channel_options(keepalive: Keepalive) -> list[tuple[str, int]]:
    """The gRPC channel arguments for one collector.

    `grpc.http2.ping_timeout_ms` is set with `grpc.keepalive_timeout_ms`: gRPC
    core (1.85) waits that long for the ack of any ping, keepalive ones
    included, and would otherwise wait its default of one minute.
    `max_pings_without_data` 0 lets the channel go on pinging a quiet stream.
    """
    timeout_ms = max(1, round(keepalive.timeout * 1000))
    return [
        *CHANNEL_OPTIONS,
        ("grpc.keepalive_time_ms", max(1, round(keepalive.interval * 1000))),
        ("grpc.keepalive_timeout_ms", timeout_ms),
        ("grpc.http2.ping_timeout_ms", timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def tls_failure(details: str, tls: ClientTls) -> str | None:
    """What the details of a connection that could not be made say about TLS, if anything."""
    text = details.lower()
    if "failed to connect" not in text:
        return None
    if not tls.enabled:
        if "socket closed" in text:
            return (
                f"unreachable: {details} (if it serves TLS, give --collector-ca, and "
                "--collector-cert/--collector-key if it requires client certificates)"
            )
        return None
    if "certificate_verify_failed" in text:
        return "presented a certificate that --collector-ca does not verify (TLS handshake failed)"
    if "wrong_version_number" in text:
        return "does not speak TLS (it serves plaintext?); the TLS handshake failed"
    if "socket closed" in text and not tls.has_client_cert:
        return (
            "refused the connection during the TLS handshake: it requires a client "
            "certificate (mTLS) and this bridge presents none; give --collector-cert and "
            "--collector-key"
        )
    if "socket closed" in text:
        return (
            "refused the connection during the TLS handshake: it does not trust this bridge's "
            "client certificate (--collector-cert), or it serves no TLS"
        )
    if "handshake failed" in text:
        return f"TLS handshake failed: {details}"
    return None


def failure_reason(
    code: grpc.StatusCode, details: str, keepalive: Keepalive, tls: ClientTls | None = None
) -> str:
    """What went wrong with a collector call, as the rest of "collector c1 at HOST:PORT ..."."""
    text = details or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        about_tls = tls_failure(text, tls or ClientTls())
        if about_tls is not None:
            return about_tls
    if code == grpc.StatusCode.UNAVAILABLE and any(w in text.lower() for w in PING_TIMEOUT_WORDS):
        return f"did not answer keepalive pings within {keepalive.timeout:g} s"
    if code == grpc.StatusCode.UNAVAILABLE and "too many pings" in text.lower():
        return (
            f"refused our keepalive pings every {keepalive.interval:g} s (GOAWAY too_many_pings); "
            "its gRPC server must allow them (grpc.http2.min_ping_interval_without_data_ms)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"did not answer ListSources within {LIST_TIMEOUT:g} s"
    return f"unreachable: {code.name}: {text}"


class Upstream:
    """The stream from one collector, restarted with backoff and resumed."""

    def __init__(
        self,
        target: CollectorTarget,
        hub: Hub,
        names: CollectorNames,
        clock: Callable[[], float],
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self.address = str(target.address)
        self.name = target.name
        self.hub = hub
        self.names = names
        self.clock = clock
        self.retries = Retries(backoff, rng)
        self.live = False
        self.interruptions = 0
        """Times the stream was lost or could not be set up (each marks the channels stale)."""
        self.reader: StreamReader | None = None
        if self.name:
            names.reserve(self.name)

    async def run(self) -> None:
        # grpc's blocking API: the stream is read on a thread (see StreamReader).
        options = channel_options(self.target.keepalive)
        tls = self.target.tls
        channel = (
            grpc.secure_channel(self.address, tls.credentials(), options=options)
            if tls.enabled
            else grpc.insecure_channel(self.address, options=options)
        )
        try:
            stub = collector_pb2_grpc.MetricsCollectorStub(channel)
            subscribe = channel.unary_stream(
                SUBSCRIBE_METHOD,
                request_serializer=collector_pb2.SubscribeRequest.SerializeToString,
                response_deserializer=None,
            )
            while True:
                try:
                    reason = await self._follow(stub, subscribe)
                except grpc.RpcError as exc:
                    reason = failure_reason(
                        exc.code(), exc.details(), self.target.keepalive, self.target.tls
                    )
                except UpstreamError as exc:
                    reason = f"needs a fresh stream ({exc})"
                followed = self.live
                self.interruptions += 1
                self._mark_stale(reason)
                delay = self.retries.delay(followed=followed)
                log.warning("%s %s; retrying in %.1fs", self._who(), reason, delay)
                await asyncio.sleep(delay)
        finally:
            channel.close()

    async def _follow(
        self,
        stub: collector_pb2_grpc.MetricsCollectorStub,
        subscribe: Callable[[collector_pb2.SubscribeRequest], StreamCall],
    ) -> str:
        listing = await asyncio.to_thread(
            stub.ListSources, collector_pb2.ListSourcesRequest(), timeout=LIST_TIMEOUT
        )
        if not self.name:
            claim = self.names.claim(listing.collector, self.address)
            if claim.taken is not None:
                log.warning(
                    "collector %s reports the name %r already in use; naming it %r",
                    self.address,
                    claim.taken,
                    claim.name,
                )
            self.name = claim.name
        now = self.clock()
        self.hub.retain_sources(self.name, {source.name for source in listing.sources}, now)
        limits = self.hub.limits
        request = collector_pb2.SubscribeRequest(
            max_batch_events=BATCH_EVENTS,
            value_deltas=True,
            replay_updates=max(limits.resume_window, limits.history_window),
        )
        for source, position in self.hub.positions(self.name).items():
            request.resume[source].CopyFrom(position.to_proto())
        name = self.name

        def deliver(message: bytes, received: float) -> None:
            for data in events_of(message):
                self.hub.apply_event(name, data, self.clock(), received)

        def drained() -> None:
            self.hub.release_held(self.clock())

        reader = self.reader = StreamReader(
            lambda: subscribe(request), deliver, clock=self.clock, drained=drained
        )
        self.live = True
        self.hub.set_collector_state(self.name, LIVE, "", now)
        log.info("following collector %s at %s", self.name, self.address)
        await reader.run()
        return "ended the stream"

    def queued_age(self) -> float:
        """Seconds the oldest message read off the stream has waited for the loop (0: none)."""
        received = None if self.reader is None else self.reader.oldest_received()
        return 0.0 if received is None else max(0.0, self.clock() - received)

    def _who(self) -> str:
        return f"collector {self.name or '?'} at {self.address}"

    def _mark_stale(self, reason: str) -> None:
        self.live = False
        if self.name:
            detail = f"{self._who()} {reason}"
            self.hub.set_collector_state(self.name, STALE, detail, self.clock())
