"""bench.pusher.ServicePusher: what one HTTP service pushes."""

from __future__ import annotations

from itertools import pairwise

from bench.pusher import ServicePusher
from metrics_bridge.v1 import metrics_pb2

COUNTER, GAUGE = metrics_pb2.METRIC_KIND_COUNTER, metrics_pb2.METRIC_KIND_GAUGE


def test_every_batch_carries_every_series_counters_grow_and_some_values_have_decimals() -> None:
    pusher = ServicePusher("127.0.0.1:1", "checkout")
    batches = [pusher.batch() for _ in range(20)]
    keys = [
        [(s.name, tuple((x.name, x.value) for x in s.labels)) for s in b.samples] for b in batches
    ]
    assert all(k == keys[0] for k in keys) and len(set(keys[0])) == len(pusher.series) == 32
    assert all(b.source == "checkout" and b.time_unix_ms > 0 for b in batches)
    counters = [i for i, s in enumerate(batches[0].samples) if s.kind == COUNTER]
    assert all(s.kind == COUNTER for s in batches[0].samples[:18])
    for before, after in pairwise(batches):
        assert all(after.samples[i].number >= before.samples[i].number for i in counters)
    requests = [s.number for b in batches for s in b.samples if s.name.endswith("requests_total")]
    assert all(n.is_integer() for n in requests) and len(set(requests)) > 10
    last = batches[-1].samples
    assert any(not s.number.is_integer() for s in last if s.kind == GAUGE)
    assert any(not s.number.is_integer() for s in last if s.kind == COUNTER)
