"""Push batch validation: errors name the offending field."""

from __future__ import annotations

import math

import pytest

from collector.errors import InvalidBatch
from collector.series import HistogramData, SeriesKey
from collector.validation import KnownSeries, PushCall, sanitize_metric_name, validate_push
from metrics_bridge.v1 import collector_pb2, metrics_pb2

GAUGE = metrics_pb2.METRIC_KIND_GAUGE
COUNTER = metrics_pb2.METRIC_KIND_COUNTER
HISTOGRAM = metrics_pb2.METRIC_KIND_HISTOGRAM


def batch(*samples: collector_pb2.Sample, source: str = "svc") -> collector_pb2.PushRequest:
    return collector_pb2.PushRequest(source=source, samples=samples)


def good(name: str = "ok", **labels: str) -> collector_pb2.Sample:
    return collector_pb2.Sample(
        name=name,
        labels=[metrics_pb2.Label(name=k, value=v) for k, v in labels.items()],
        kind=GAUGE,
        number=1.0,
    )


def field_of(request: collector_pb2.PushRequest, max_samples: int = 100) -> str:
    with pytest.raises(InvalidBatch) as info:
        validate_push(request, max_samples)
    return info.value.field


def test_a_valid_batch_becomes_samples_with_sorted_labels() -> None:
    [s] = validate_push(batch(good("http_requests", path="/", method="GET")), 100)
    assert s.key == SeriesKey("http_requests", (("method", "GET"), ("path", "/")))
    assert s.value == 1.0


def test_bad_label_name_is_named_by_index() -> None:
    bad = batch(good("a"), good("b"), good("c"), good("x", ok="1", **{"1bad": "v"}))
    assert field_of(bad) == "samples[3].labels[1].name"


@pytest.mark.parametrize("name", ["", "9lives", "has-dash", "dotted.name", "spa ce"])
def test_bad_metric_names(name: str) -> None:
    assert field_of(batch(good(name))) == "samples[0].name"


@pytest.mark.parametrize("source", ["", "a/b", "x" * 129])
def test_bad_source_names(source: str) -> None:
    assert field_of(batch(good(), source=source)) == "source"


def test_too_many_samples() -> None:
    assert field_of(batch(good("a"), good("b"), good("c")), max_samples=2) == "samples"


def test_too_many_labels() -> None:
    labels = {f"l{i}": "v" for i in range(33)}
    assert field_of(batch(good(**labels))) == "samples[0].labels"


def test_reserved_and_duplicate_label_names() -> None:
    assert field_of(batch(good(__name__="x"))) == "samples[0].labels[0].name"
    dup = good()
    dup.labels.extend([metrics_pb2.Label(name="a"), metrics_pb2.Label(name="a")])
    assert field_of(batch(dup)) == "samples[0].labels[1].name"


def test_long_label_value() -> None:
    assert field_of(batch(good(a="v" * 1025))) == "samples[0].labels[0].value"


def test_the_same_series_twice_in_a_batch() -> None:
    assert field_of(batch(good("a", x="1"), good("a", x="1"))) == "samples[1]"


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_numbers_must_be_finite(value: float) -> None:
    s = good()
    s.number = value
    assert field_of(batch(s)) == "samples[0].number"


def test_counter_cannot_be_negative_and_needs_a_number() -> None:
    negative = collector_pb2.Sample(name="c", kind=COUNTER, number=-1)
    assert field_of(batch(negative)) == "samples[0].number"
    missing = collector_pb2.Sample(name="c", kind=COUNTER)
    assert field_of(batch(missing)) == "samples[0].number"


def test_kind_must_be_given() -> None:
    assert field_of(batch(collector_pb2.Sample(name="c", number=1))) == "samples[0].kind"


def test_histogram_rules() -> None:
    def hist(bounds: list[float], counts: list[int], count: int) -> collector_pb2.Sample:
        return collector_pb2.Sample(
            name="h",
            kind=HISTOGRAM,
            histogram=metrics_pb2.Histogram(bounds=bounds, counts=counts, count=count),
        )

    assert field_of(batch(hist([2, 1], [0, 0, 0], 0))) == "samples[0].histogram.bounds[1]"
    assert field_of(batch(hist([1], [1], 1))) == "samples[0].histogram.counts"
    assert field_of(batch(hist([1], [1, 1], 3))) == "samples[0].histogram.count"
    [s] = validate_push(batch(hist([1, 2], [1, 0, 2], 3)), 10)
    assert s.value == HistogramData((1.0, 2.0), (1, 0, 2), 3, 0.0)


def test_remove_needs_only_name_and_labels() -> None:
    [s] = validate_push(batch(collector_pb2.Sample(name="gone", remove=True)), 10)
    assert s.remove and s.value is None


def test_sanitize_metric_name() -> None:
    assert sanitize_metric_name("http.server.duration") == "http_server_duration"
    assert sanitize_metric_name("1st-try") == "_1st_try"


def test_a_push_call_takes_batches_of_one_source() -> None:
    call = PushCall(max_samples=100)
    assert len(call.validate(batch(good("a"), source="svc"))) == 1
    assert len(call.validate(batch(good("b"), source="svc"))) == 1
    assert call.source == "svc"


def test_a_push_call_refuses_a_batch_of_another_source() -> None:
    call = PushCall(max_samples=100)
    call.validate(batch(good(), source="svc"))
    with pytest.raises(InvalidBatch) as info:
        call.validate(batch(good(), source="other"))
    assert info.value.field == "source"
    assert "changed from 'svc' to 'other' within one call" in str(info.value)
    assert call.source == "svc"


def test_a_push_call_applies_the_batch_rules_to_each_batch() -> None:
    call = PushCall(max_samples=1)
    with pytest.raises(InvalidBatch) as info:
        call.validate(batch(good("a"), good("b")))
    assert info.value.field == "samples"
    assert call.source == "", "a refused first batch fixes no source"


def test_a_series_a_call_checked_before_still_has_its_value_checked() -> None:
    call = PushCall(max_samples=100)
    counter = collector_pb2.Sample(name="hits", kind=COUNTER, number=3.0)
    assert call.validate(batch(counter))[0].value == 3.0
    counter.number = -1.0
    with pytest.raises(InvalidBatch, match="counter cannot be negative"):
        call.validate(batch(counter))
    counter.ClearField("number")
    with pytest.raises(InvalidBatch, match="needs a number"):
        call.validate(batch(counter))


def test_a_known_series_sent_twice_in_one_batch_is_still_refused() -> None:
    call = PushCall(max_samples=100)
    call.validate(batch(good("a", x="1")))
    with pytest.raises(InvalidBatch, match=r"same series as samples\[0\]"):
        call.validate(batch(good("a", x="1"), good("a", x="1")))


def test_checked_series_are_remembered_within_a_byte_budget() -> None:
    known = KnownSeries(limit=100)
    for n in range(20):
        validate_push(batch(good("m", n=str(n))), 100, known)
    assert known.bytes_held <= 100
    samples = validate_push(batch(good("m", n="19")), 100, known)
    assert samples[0].key == SeriesKey("m", (("n", "19"),))
