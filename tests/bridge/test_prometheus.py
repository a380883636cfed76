"""BridgeMetrics: the /metrics exposition, read from a real Hub driven without sockets."""

from __future__ import annotations

from dataclasses import dataclass, fields

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import BridgeConfig
from bridge.frame import Frame
from bridge.hub import Counters, Hub
from bridge.prometheus import BridgeMetrics, exposition, registry_for
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2
from tests.bridge.events import snapshot_event, update_event

CHANNEL = "col/svc"


class Sink:
    def __init__(self) -> None:
        self.pending = 0

    def buffered(self) -> int:
        return self.pending

    def write(self, frame: Frame) -> int:
        self.pending += len(frame.wire)
        return len(frame.wire)

    def ping(self, payload: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


@dataclass
class Upstream:
    name: str
    address: str
    live: bool
    interruptions: int = 0
    waiting: float = 0.0

    def queued_age(self) -> float:
        return self.waiting


def make_hub(buffer_bytes: int = 1 << 20) -> Hub:
    config = BridgeConfig(
        resume_window=8,
        heartbeat=1,
        ping_interval=60,
        ping_timeout=60,
        client_buffer_bytes=buffer_bytes,
        slow_client_timeout=60,
    )
    hub = Hub(
        limits=config.limits(),
        timers=config.timers(),
        policy=config.client_policy(),
        max_connections=10,
        server_version="test",
    )
    hub.apply_event("col", snapshot_event("svc", 7, 0, {1: 0.0}), 0)
    hub.tick(0)
    return hub


def subscribe(hub: Hub, sink: Sink) -> None:
    client = hub.connect(sink, 0)
    request = bridge_pb2.ChannelRequest(channel=CHANNEL)
    message = bridge_pb2.ClientMessage(subscribe=bridge_pb2.Subscribe(channels=[request]))
    hub.receive(client, message.SerializeToString(), 0)


def scrape(metrics: BridgeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, by (sample name, sorted labels)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return parse(exposition(registry).decode())


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_every_hub_counter_is_exported_as_a_prometheus_counter() -> None:
    samples = scrape(BridgeMetrics(make_hub()))
    for field in fields(Counters):
        if field.name not in ("refusals", "upstream_resyncs", "drops", "stage_resyncs"):
            assert (f"metrics_bridge_{field.name}_total", ()) in samples


def test_upstream_resyncs_are_counted_by_reason() -> None:
    hub = make_hub()
    hub.apply_event("col", b"\xff", 0)
    samples = scrape(BridgeMetrics(hub))
    assert samples[("metrics_bridge_upstream_resyncs_total", (("reason", "undecodable"),))] == 1


def test_refusals_are_counted_by_reason() -> None:
    hub = make_hub()
    hub.counters.refused("origin")
    hub.counters.refused("expired")
    hub.counters.refused("expired")
    samples = scrape(BridgeMetrics(hub))
    assert samples[("metrics_bridge_refusals_total", (("reason", "origin"),))] == 1
    assert samples[("metrics_bridge_refusals_total", (("reason", "expired"),))] == 2


def test_counters_move_as_a_client_connects_and_receives() -> None:
    hub = make_hub()
    before = scrape(BridgeMetrics(hub))
    subscribe(hub, Sink())
    hub.apply_event("col", update_event("svc", 7, 1, {1: 1.0}), 1)
    after = scrape(BridgeMetrics(hub))
    assert after[("metrics_bridge_connections_accepted_total", ())] == 1
    assert after[("metrics_bridge_connections", ())] == 1
    assert after[("metrics_bridge_channel_subscribers", (("channel", CHANNEL),))] == 1
    assert after[("metrics_bridge_channel_seq", (("channel", CHANNEL),))] == 1
    for name in ("frames_sent", "bytes_sent", "subscriptions", "upstream_events"):
        key = (f"metrics_bridge_{name}_total", ())
        assert after[key] > before[key], name


def test_a_slow_client_shows_as_skipped_updates_then_a_resync() -> None:
    hub = make_hub(buffer_bytes=600)
    sink = Sink()
    subscribe(hub, sink)
    for seq in range(1, 40):
        hub.apply_event("col", update_event("svc", 7, seq, {1: float(seq)}), 1)
    assert scrape(BridgeMetrics(hub))[("metrics_bridge_updates_skipped_total", ())] > 0
    sink.pending = 0
    hub.apply_event("col", update_event("svc", 7, 40, {1: 40.0}), 2)
    hub.tick(2)
    assert scrape(BridgeMetrics(hub))[("metrics_bridge_resyncs_total", ())] >= 1


def test_channel_state_is_one_hot_and_follows_the_upstream() -> None:
    hub = make_hub()
    hub.set_collector_state("col", bridge_pb2.UPSTREAM_STATE_STALE, "collector down", 1)
    samples = scrape(BridgeMetrics(hub))
    states = {
        state: samples[("metrics_bridge_channel_state", (("channel", CHANNEL), ("state", state)))]
        for state in ("live", "stale", "removed")
    }
    assert states == {"live": 0.0, "stale": 1.0, "removed": 0.0}


def test_upstream_up_reports_each_collector() -> None:
    upstreams = [Upstream("a", "127.0.0.1:1", True), Upstream("b", "127.0.0.1:2", False)]
    samples = scrape(BridgeMetrics(make_hub(), lambda: upstreams))
    key = "metrics_bridge_upstream_up"
    assert samples[(key, (("address", "127.0.0.1:1"), ("collector", "a")))] == 1
    assert samples[(key, (("address", "127.0.0.1:2"), ("collector", "b")))] == 0


def test_upstream_interruptions_are_counted_per_collector() -> None:
    upstreams = [Upstream("a", "127.0.0.1:1", True, 3)]
    samples = scrape(BridgeMetrics(make_hub(), lambda: upstreams))
    key = "metrics_bridge_upstream_interruptions_total"
    assert samples[(key, (("address", "127.0.0.1:1"), ("collector", "a")))] == 3


def test_data_age_is_now_minus_the_newest_measurement_time() -> None:
    hub = make_hub()
    update = metrics_pb2.Update(source="svc", epoch=7, seq=1, time_unix_ms=1_000_000)
    hub.apply_event("col", collector_pb2.CollectorEvent(update=update).SerializeToString(), 1)
    samples = scrape(BridgeMetrics(hub, wall_time=lambda: 1_002.5))
    assert samples[("metrics_bridge_channel_data_age_seconds", (("channel", CHANNEL),))] == 2.5


def test_the_registry_adds_the_process_metrics() -> None:
    samples = parse(exposition(registry_for(make_hub())).decode())
    assert ("metrics_bridge_connections", ()) in samples
    assert samples[("process_resident_memory_bytes", ())] > 0


def test_drops_and_stage_resyncs_are_counted_by_stage_and_reason() -> None:
    hub = make_hub()
    hub.counters.dropped("handoff", "stale", 4)
    hub.counters.resynced("handoff", "stale")
    hub.counters.dropped("client", "overflow")
    samples = scrape(BridgeMetrics(hub))
    drops = "metrics_bridge_dropped_updates_total"
    assert samples[(drops, (("reason", "stale"), ("stage", "handoff")))] == 4
    assert samples[(drops, (("reason", "overflow"), ("stage", "client")))] == 1
    key = ("metrics_bridge_stage_resyncs_total", (("reason", "stale"), ("stage", "handoff")))
    assert samples[key] == 1


def test_the_age_of_delivered_and_of_queued_data() -> None:
    hub = make_hub()
    subscribe(hub, Sink())
    update = metrics_pb2.Update(source="svc", epoch=7, seq=1, time_unix_ms=1_000_000)
    hub.wall_ms = lambda: 1_000_400
    hub.apply_event("col", collector_pb2.CollectorEvent(update=update).SerializeToString(), 1)
    upstreams = [Upstream("a", "127.0.0.1:1", True, waiting=0.25)]
    samples = scrape(BridgeMetrics(hub, lambda: upstreams))
    assert samples[("metrics_bridge_channel_delivered_age_seconds", (("channel", CHANNEL),))] == 0.4
    assert ("metrics_bridge_channel_queued_age_seconds", (("channel", CHANNEL),)) in samples
    key = (
        "metrics_bridge_upstream_queued_age_seconds",
        (("address", "127.0.0.1:1"), ("collector", "a")),
    )
    assert samples[key] == 0.25


def test_hop_delays_are_histograms() -> None:
    hub = make_hub()
    hub.hops.handoff.observe(0.004)
    hub.hops.handoff.observe(2.0)
    hub.hops.flush.observe(0.0001)
    samples = scrape(BridgeMetrics(hub))
    handoff = "metrics_bridge_handoff_delay_seconds"
    assert samples[(handoff + "_count", ())] == 2
    assert samples[(handoff + "_sum", ())] == 2.004
    assert samples[(handoff + "_bucket", (("le", "0.005"),))] == 1
    assert samples[(handoff + "_bucket", (("le", "2.5"),))] == 2
    assert samples[(handoff + "_bucket", (("le", "+Inf"),))] == 2
    assert samples[("metrics_bridge_flush_delay_seconds_count", ())] == 1
    assert samples[("metrics_bridge_upstream_delay_seconds_count", ())] == 0
