"""/metrics: the bridge's counters and upstream state in Prometheus text format.

`BridgeMetrics` is a prometheus_client custom collector. A scrape reads the
hub's plain-int `Counters`, its clients and channels, and each upstream's
liveness; nothing on the fan-out path touches prometheus_client (the hop
histograms are plain counts the core keeps). Every name starts with
`metrics_bridge_`:

- `<counter>_total` for each field of the hub's `Counters` (connections
  accepted/closed, frames and bytes sent, resyncs, skipped updates and
  slow-client closes, recoveries and recovery misses, upstream events and
  gaps, ...); a field added to `Counters` later is exported as well.
- `refusals_total{reason}`: handshakes and requests refused by access
  control: `origin` (HTTP 403), `missing_token`, `expired`, `bad_signature`,
  `malformed`, `wrong_audience`, `wrong_issuer`, `not_yet_valid`,
  `missing_claim`, `unknown_key`, `channel_not_granted`.
- `connections`, `channels`: current numbers.
- `channel_subscribers{channel}`, `channel_seq{channel}`,
  `channel_state{channel,state}` (1 for the current one of live, stale,
  removed) and `channel_data_age_seconds{channel}`: now minus the time of the
  channel's newest data; for a steadily sampled source that is the
  collector-to-bridge lag plus at most one sampling interval.
- `upstream_up{collector,address}`: 1 while the collector's stream is live.
- `upstream_interruptions_total{collector,address}`: times the collector's
  stream ended or failed (down, hung, restarted).
- `upstream_resyncs_total{reason}`: bad data from a collector (seq_jump,
  epoch_changed, unknown_channel, undecodable, unknown_event); the channel is
  resynced from the collector's snapshot while the others go on.
- `dropped_updates_total{stage,reason}`: updates dropped for the latest
  state, and `stage_resyncs_total{stage,reason}`: the snapshots or merged
  updates (marked with a ResyncReason) sent for them. `stage` is
  `collector` (its queue for this bridge; counted from the marked snapshots
  it sends), `handoff` (the bridge's upstream queue, bridge/hub.py) or
  `client` (a client's outbound buffer); `reason` is `stale` (past
  --max-staleness), `overflow` (a count or byte bound) or `coalesced`
  (merged, unmarked, at the hand-off of a bridge that fell behind).
- `channel_delivered_age_seconds{channel}`: how old the channel's newest
  data (its `time_unix_ms`) was when the bridge last published it to the
  channel's full-rate subscribers.
- `channel_queued_age_seconds{channel}`: how old the oldest data queued for
  the channel in a client's outbound buffer is, estimated from each client's
  buffered bytes and measured drain rate (`Hub.client_queue_ages`; +Inf for
  a client that stopped reading).
- `upstream_queued_age_seconds{collector,address}`: how long the oldest
  message read off the collector's stream has waited for the event loop (0
  when none waits).
- histograms of the hops data takes through the bridge, observed per event
  or per flush (bridge/hops.py): `upstream_delay_seconds`, the data's time
  to its read off the stream (the collector's queue and gRPC included; the
  collector's clock against this host's); `handoff_delay_seconds`, that read
  to its application on the event loop; `flush_delay_seconds`, the first
  frame of a write batch queued to the batch written (the pacer's wait
  included).
- the process's own `process_*` metrics (RSS, CPU, open fds).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bridge.hops import DelayHistogram, HopDelays
from metrics_bridge.v1 import bridge_pb2

__all__ = [
    "CONTENT_TYPE",
    "PREFIX",
    "BridgeMetrics",
    "ChannelReading",
    "HubReading",
    "UpstreamReading",
    "exposition",
    "metrics_endpoint",
    "registry_for",
]


PREFIX = "metrics_bridge_"
CONTENT_TYPE = CONTENT_TYPE_LATEST

COUNTER_HELP = {
    "connections_accepted": "WebSocket connections accepted",
    "connections_rejected_capacity": "connections refused at --max-connections (1013)",
    "connections_closed": "connections that ended, for any reason",
    "client_errors": "connections closed for a client protocol error",
    "frames_sent": "frames (messages) written to clients",
    "bytes_sent": "bytes of frames written to clients",
    "updates_skipped": "updates skipped for clients whose buffer was full (slow-client drops)",
    "resyncs": "snapshots sent to lagging clients instead of the updates they missed",
    "slow_client_closes": "clients closed for lagging too long (4000)",
    "ping_timeouts": "clients closed for not answering a WebSocket ping (1011)",
    "subscriptions": "channel subscriptions accepted",
    "recoveries": "resumes answered with the missed updates (recovered)",
    "recovery_misses": "resumes answered with a snapshot (the ring had moved on)",
    "heartbeats_sent": "heartbeat frames sent",
    "upstream_events": "events received from collectors",
    "upstream_gaps": "updates from collectors that did not continue their channel (resynced)",
}

STATE_NAMES = {
    bridge_pb2.UPSTREAM_STATE_LIVE: "live",
    bridge_pb2.UPSTREAM_STATE_STALE: "stale",
    bridge_pb2.UPSTREAM_STATE_REMOVED: "removed",
}


class ChannelReading(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def time_unix_ms(self) -> int: ...


class HubReading(Protocol):
    @property
    def counters(self) -> Any: ...
    @property
    def clients(self) -> Sized: ...
    @property
    def channels(self) -> Mapping[str, ChannelReading]: ...
    @property
    def pools(self) -> Mapping[str, Sized]: ...
    @property
    def delivered_ages(self) -> Mapping[str, float]: ...
    @property
    def hops(self) -> HopDelays: ...
    def client_queue_ages(self) -> Mapping[str, float]: ...


class UpstreamReading(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def live(self) -> bool: ...
    @property
    def interruptions(self) -> int: ...
    def queued_age(self) -> float: ...


class BridgeMetrics:
    """A prometheus_client collector reading the hub and upstreams at scrape time."""

    def __init__(
        self,
        hub: HubReading,
        upstreams: Callable[[], Iterable[UpstreamReading]] = tuple,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.upstreams = upstreams
        self.wall_time = wall_time

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._gauges()
        yield from self._hops()

    def _counters(self) -> Iterator[Metric]:
        counters = self.hub.counters
        for field in dataclasses.fields(counters):
            value = getattr(counters, field.name)
            if isinstance(value, int | float):
                help_text = COUNTER_HELP.get(field.name, field.name.replace("_", " "))
                yield CounterMetricFamily(PREFIX + field.name, help_text, value=value)
        refusals = CounterMetricFamily(
            PREFIX + "refusals",
            "handshakes and requests refused by access control, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(getattr(counters, "refusals", {}).items()):
            refusals.add_metric([reason], count)
        yield refusals
        resyncs = CounterMetricFamily(
            PREFIX + "upstream_resyncs",
            "bad data from collectors (seq_jump, epoch_changed, unknown_channel, "
            "undecodable, unknown_event), each answered by fetching snapshots",
            labels=["reason"],
        )
        for reason, count in sorted(getattr(counters, "upstream_resyncs", {}).items()):
            resyncs.add_metric([reason], count)
        yield resyncs
        drops = CounterMetricFamily(
            PREFIX + "dropped_updates",
            "updates dropped for the latest state, by stage (collector, handoff, client) "
            "and reason (stale, overflow)",
            labels=["stage", "reason"],
        )
        for (stage, reason), count in sorted(getattr(counters, "drops", {}).items()):
            drops.add_metric([stage, reason], count)
        yield drops
        stage_resyncs = CounterMetricFamily(
            PREFIX + "stage_resyncs",
            "snapshots or merged updates, marked with the reason, sent for those drops",
            labels=["stage", "reason"],
        )
        for (stage, reason), count in sorted(getattr(counters, "stage_resyncs", {}).items()):
            stage_resyncs.add_metric([stage, reason], count)
        yield stage_resyncs

    def _gauges(self) -> Iterator[Metric]:
        hub = self.hub
        yield GaugeMetricFamily(PREFIX + "connections", "open client connections", len(hub.clients))
        yield GaugeMetricFamily(PREFIX + "channels", "channels served", len(hub.channels))
        subscribers = GaugeMetricFamily(
            PREFIX + "channel_subscribers", "clients subscribed to the channel", labels=["channel"]
        )
        seq = GaugeMetricFamily(
            PREFIX + "channel_seq", "the channel's position (seq) at the bridge", labels=["channel"]
        )
        state = GaugeMetricFamily(
            PREFIX + "channel_state",
            "1 for the channel's upstream state",
            labels=["channel", "state"],
        )
        age = GaugeMetricFamily(
            PREFIX + "channel_data_age_seconds",
            "now minus the measurement time of the channel's newest data",
            labels=["channel"],
        )
        now = self.wall_time()
        for name, channel in sorted(hub.channels.items()):
            subscribers.add_metric([name], len(hub.pools.get(name, ())))
            seq.add_metric([name], channel.seq)
            for code, label in STATE_NAMES.items():
                state.add_metric([name, label], 1.0 if channel.state == code else 0.0)
            if channel.time_unix_ms:
                age.add_metric([name], max(0.0, now - channel.time_unix_ms / 1000))
        yield from (subscribers, seq, state, age)
        delivered = GaugeMetricFamily(
            PREFIX + "channel_delivered_age_seconds",
            "how old the channel's newest data was when last published to its subscribers",
            labels=["channel"],
        )
        for name, seconds in sorted(hub.delivered_ages.items()):
            delivered.add_metric([name], max(0.0, seconds))
        yield delivered
        queued = GaugeMetricFamily(
            PREFIX + "channel_queued_age_seconds",
            "estimated age of the oldest data queued for the channel in a client's buffer",
            labels=["channel"],
        )
        for name, seconds in sorted(hub.client_queue_ages().items()):
            queued.add_metric([name], seconds)
        yield queued
        up = GaugeMetricFamily(
            PREFIX + "upstream_up",
            "1 while the collector's stream is live",
            labels=["collector", "address"],
        )
        queued = GaugeMetricFamily(
            PREFIX + "upstream_queued_age_seconds",
            "how long the oldest message read off the collector's stream has waited for the loop",
            labels=["collector", "address"],
        )
        interruptions = CounterMetricFamily(
            PREFIX + "upstream_interruptions",
            "times the collector's stream ended or failed",
            labels=["collector", "address"],
        )
        for upstream in self.upstreams():
            labels = [upstream.name, upstream.address]
            up.add_metric(labels, 1.0 if upstream.live else 0.0)
            interruptions.add_metric(labels, upstream.interruptions)
            queued.add_metric(labels, upstream.queued_age())
        yield up
        yield interruptions
        yield queued

    def _hops(self) -> Iterator[Metric]:
        hops = self.hub.hops
        yield _histogram(
            "upstream_delay_seconds",
            "the data's time (time_unix_ms) to its read off the collector's stream",
            hops.upstream,
        )
        yield _histogram(
            "handoff_delay_seconds",
            "read off the collector's stream to applied on the event loop",
            hops.handoff,
        )
        yield _histogram(
            "flush_delay_seconds",
            "the first frame of a write batch queued to the batch written",
            hops.flush,
        )


def _histogram(name: str, help_text: str, delays: DelayHistogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(
        PREFIX + name, help_text, buckets=delays.cumulative(), sum_value=delays.sum
    )


def registry_for(
    hub: HubReading, upstreams: Callable[[], Iterable[UpstreamReading]] = tuple
) -> CollectorRegistry:
    """A registry of the bridge's metrics plus this process's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeMetrics(hub, upstreams))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format body for GET /metrics (content type: CONTENT_TYPE)."""
    body: bytes = generate_latest(registry)
    return body


def metrics_endpoint(
    hub: HubReading, upstreams: Callable[[], Iterable[UpstreamReading]] = tuple
) -> Callable[[], bytes]:
    """The body source for `HttpRoutes(..., metrics=...)`: one exposition per call."""
    registry = registry_for(hub, upstreams)
    return lambda: exposition(registry)
