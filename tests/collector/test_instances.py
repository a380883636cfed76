"""Instances (replicas) of one source: each owns its series, removals stay
within it, and an idle instance expires while the others go on."""

from __future__ import annotations

import itertools

import pytest

from collector.config import CollectorConfig
from collector.errors import InvalidBatch
from collector.fanout import Event
from collector.hub import CollectorHub, RemovedSource
from collector.series import COUNTER, GAUGE, Descriptor, SeriesKey, SeriesSample
from collector.validation import PushCall
from metrics_bridge.v1 import collector_pb2, metrics_pb2

OTLP = metrics_pb2.SOURCE_KIND_OTLP


def sample(name: str, instance: str, value: float) -> SeriesSample:
    return SeriesSample(SeriesKey.of(name, [("instance", instance)]), Descriptor(GAUGE), value)


def hub(ttl: float = 10) -> CollectorHub:
    counter = itertools.count(100)
    limits = CollectorConfig(source_ttl=ttl).hub_limits()
    return CollectorHub(limits, epochs=lambda: next(counter))


def replicas(h: CollectorHub, received: float, *names: str) -> None:
    for name in names:
        h.apply("svc", OTLP, [sample("g", name, 1)], 1, received=received, instance=name)


def keys(h: CollectorHub) -> set[str]:
    return {dict(k.labels)["instance"] for k in h.get("svc").series_keys()}


def test_an_idle_instance_loses_its_series_while_the_others_go_on() -> None:
    h = hub(ttl=10)
    replicas(h, 0, "a", "b", "c")
    sub = h.subscribe(["svc"])
    sub.pop()  # the snapshot
    replicas(h, 8, "a", "b")
    gone = h.expire(10, now_unix_ms=5)
    assert gone == [RemovedSource("svc", OTLP, 100, 10, "c")]
    assert keys(h) == {"a", "b"}
    [event] = [sub.pop()]
    assert isinstance(event, Event)
    update = collector_pb2.CollectorEvent.FromString(event.data).update
    assert len(update.removed) == 1 and update.time_unix_ms == 5
    assert h.expire(17.9) == []
    # the last instances go with the source itself: one SourceRemoved
    assert [(r.name, r.instance) for r in h.expire(18)] == [("svc", None)]


def test_an_instance_coming_back_gets_new_series() -> None:
    h = hub(ttl=10)
    replicas(h, 0, "a", "b")
    replicas(h, 9, "a")
    h.expire(10)
    replicas(h, 11, "b")
    assert keys(h) == {"a", "b"}


def test_a_removal_from_one_instance_does_not_touch_another() -> None:
    h = hub()
    replicas(h, 0, "a", "b")
    removal = SeriesSample(SeriesKey.of("g", [("instance", "a")]), Descriptor(GAUGE), remove=True)
    h.apply("svc", OTLP, [removal], 2, received=1, instance="a")
    assert keys(h) == {"b"}


def test_instances_own_what_they_last_set() -> None:
    h = hub()
    shared = SeriesSample(SeriesKey.of("shared"), Descriptor(COUNTER), 1.0)
    h.apply("svc", OTLP, [shared], 1, received=0, instance="a")
    h.apply("svc", OTLP, [shared], 1, received=5, instance="b")
    h.apply("svc", OTLP, [sample("g", "a", 1)], 1, received=5, instance="a")
    h.expire(15, 1)  # "a" was last heard at 5 as well: both idle, the source goes
    assert "svc" not in h.sources
    h2 = hub()
    h2.apply("svc", OTLP, [shared], 1, received=0, instance="a")
    h2.apply("svc", OTLP, [shared], 1, received=5, instance="b")
    assert [r.instance for r in h2.expire(10, 1)] == []  # "a" owns nothing any more
    assert SeriesKey.of("shared") in set(h2.get("svc").series_keys())


def push(instance: str, *labels: tuple[str, str]) -> collector_pb2.PushRequest:
    return collector_pb2.PushRequest(
        source="svc",
        instance=instance,
        samples=[
            collector_pb2.Sample(
                name="g",
                kind=metrics_pb2.METRIC_KIND_GAUGE,
                number=1,
                labels=[metrics_pb2.Label(name=n, value=v) for n, v in labels],
            )
        ],
    )


def test_push_instance_labels_every_sample() -> None:
    [s] = PushCall(10).validate(push("pod-a", ("route", "/")))
    assert s.key == SeriesKey.of("g", [("instance", "pod-a"), ("route", "/")])


def test_push_sample_may_not_carry_its_own_instance_label_when_the_request_names_one() -> None:
    with pytest.raises(InvalidBatch, match=r"samples\[0\]\.labels: 'instance' is set"):
        PushCall(10).validate(push("pod-a", ("instance", "x")))
    [s] = PushCall(10).validate(push("", ("instance", "x")))  # no request instance: a label
    assert s.key.labels == (("instance", "x"),)


def test_one_push_call_is_one_instance() -> None:
    call = PushCall(10)
    call.validate(push("pod-a"))
    with pytest.raises(InvalidBatch, match="instance: changed from 'pod-a' to 'pod-b'"):
        call.validate(push("pod-b"))


def test_idle_timers_stay_bounded_by_the_series_limit_under_empty_exports() -> None:
    counter = itertools.count(100)
    limits = CollectorConfig(source_ttl=10, max_series_per_source=3).hub_limits()
    h = CollectorHub(limits, epochs=lambda: next(counter))
    replicas(h, 0, "a", "b")
    for n in range(50):
        h.apply("svc", OTLP, [], 1, received=1, instance=f"empty-{n}")
        assert len(h.timed_instances("svc")) <= 4
    assert {"a", "b"} <= h.timed_instances("svc")
    h.expire(10.5)
    assert keys(h) == set()
