"""A Push call checks a batch encoded like its last one by bytes: same series,
new numbers; anything else is validated in full, with the same answer."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.batch_template import BatchTemplate
from collector.errors import InvalidBatch
from collector.event_batch import varint
from collector.validation import PushCall, _walked_batches, encoded_batches, validate_push
from metrics_bridge.v1 import collector_pb2, metrics_pb2

GAUGE, COUNTER = metrics_pb2.METRIC_KIND_GAUGE, metrics_pb2.METRIC_KIND_COUNTER


def sample(
    name: str, value: float, kind: metrics_pb2.MetricKind.ValueType = GAUGE, **labels: str
) -> collector_pb2.Sample:
    return collector_pb2.Sample(
        name=name,
        kind=kind,
        number=value,
        labels=[metrics_pb2.Label(name=k, value=v) for k, v in labels.items()],
    )


def batch(*values: float, route: str = "/a", time_unix_ms: int = 0, instance: str = "") -> bytes:
    samples = [sample("latency", values[0], route=route)]
    samples += [sample("requests", v, COUNTER, n=str(i)) for i, v in enumerate(values[1:])]
    request = collector_pb2.PushRequest(
        source="svc", samples=samples, time_unix_ms=time_unix_ms, instance=instance
    )
    return request.SerializeToString()


def full(data: bytes) -> list[tuple[object, ...]]:
    return [tuple(s) for s in validate_push(collector_pb2.PushRequest.FromString(data), 100)]


def test_a_batch_like_the_last_one_matches_with_its_own_numbers() -> None:
    call = PushCall(100)
    call.validate_encoded(batch(1.5, 10, 20))
    assert call._template is not None
    assert call._template.match(batch(2.5, 11, 22)) is not None
    samples, time_unix_ms = call.validate_encoded(batch(2.5, 11, 22))
    assert [tuple(s) for s in samples] == full(batch(2.5, 11, 22))
    assert time_unix_ms == 0 and call.batches == 2


def test_a_changed_label_of_the_same_length_does_not_match() -> None:
    call = PushCall(100)
    call.validate_encoded(batch(1.5, 10, route="/a"))
    assert call._template is not None
    assert call._template.match(batch(1.5, 10, route="/b")) is None
    samples, _ = call.validate_encoded(batch(1.5, 10, route="/b"))
    assert samples[0].key.labels == (("route", "/b"),)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ((math.nan, 1), "samples[0].number: must be finite"),
        ((1.0, -1), "samples[1].number: a counter cannot be negative"),
    ],
)
def test_a_matching_batch_with_a_bad_number_is_refused_naming_it(
    values: tuple[float, float], field: str
) -> None:
    call = PushCall(100)
    call.validate_encoded(batch(1.0, 1))
    with pytest.raises(InvalidBatch, match=re.escape(field)):
        call.validate_encoded(batch(*values))


def test_time_and_instance_after_the_samples_are_read_from_each_batch() -> None:
    call = PushCall(100)
    call.validate_encoded(batch(1.0, 1, time_unix_ms=1000, instance="pod-a"))
    samples, time_unix_ms = call.validate_encoded(
        batch(2.0, 2, time_unix_ms=2000, instance="pod-a")
    )
    assert time_unix_ms == 2000 and samples[0].value == 2.0
    with pytest.raises(InvalidBatch, match="instance: changed from 'pod-a' to 'pod-b'"):
        call.validate_encoded(batch(3.0, 3, time_unix_ms=3000, instance="pod-b"))


def test_histograms_removals_and_bytes_out_of_field_order_get_no_template() -> None:
    histogram = collector_pb2.PushRequest(
        source="svc",
        samples=[
            collector_pb2.Sample(
                name="h",
                kind=metrics_pb2.METRIC_KIND_HISTOGRAM,
                histogram=metrics_pb2.Histogram(bounds=[1], counts=[1, 0], count=1, sum=0.5),
            )
        ],
    ).SerializeToString()
    removal = collector_pb2.PushRequest(
        source="svc", samples=[collector_pb2.Sample(name="g", remove=True)]
    ).SerializeToString()
    time_first = collector_pb2.PushRequest(time_unix_ms=5).SerializeToString() + batch(1.0)
    for data in (histogram, removal, time_first):
        samples = validate_push(collector_pb2.PushRequest.FromString(data), 100)
        assert BatchTemplate.of(data, samples) is None


def test_bytes_that_are_not_a_push_request_are_refused() -> None:
    with pytest.raises(InvalidBatch, match="batch: not an encoded PushRequest"):
        PushCall(100).validate_encoded(b"\x0a\xff")


def test_a_push_batches_message_is_split_into_its_encoded_batches() -> None:
    batches = [batch(1.0), batch(2.0)]
    message = collector_pb2.PushBatchesRequest(
        batches=[collector_pb2.PushRequest.FromString(b) for b in batches]
    ).SerializeToString()
    assert encoded_batches(message) == batches
    with pytest.raises(InvalidBatch, match="batches: not an encoded PushBatchesRequest"):
        encoded_batches(b"\x08\x01")  # field 1 as a varint
    many = collector_pb2.PushBatchesRequest(
        batches=[collector_pb2.PushRequest(source="svc")] * 1025
    ).SerializeToString()
    with pytest.raises(InvalidBatch, match="batches: at most 1024 per message, got 1025"):
        encoded_batches(many)


def walked(message: bytes) -> list[bytes] | str:
    """What the general field walk makes of `message`: its batches, or its error."""
    try:
        return _walked_batches(message)
    except InvalidBatch as exc:
        return str(exc)


def split(message: bytes) -> list[bytes] | str:
    try:
        return encoded_batches(message)
    except InvalidBatch as exc:
        return str(exc)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40) | st.binary(min_size=120, max_size=300), max_size=8))
def test_batches_of_any_length_are_split_as_written(batches: list[bytes]) -> None:
    large = [b"x" * 20_000] if len(batches) == 3 else []  # a three-byte length
    message = b"".join(b"\x0a" + varint(len(b)) + b for b in [*batches, *large])
    assert encoded_batches(message) == [*batches, *large]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.binary(max_size=6)
        | st.sampled_from([b"\x0a", b"\x0a\x80", b"\x0a\x81\x01", b"\x0a\x05", b"\x08\x01"]),
        max_size=8,
    ).map(b"".join)
)
def test_any_bytes_are_split_or_refused_as_the_general_field_walk_does(message: bytes) -> None:
    assert split(message) == walked(message)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["/a", "/b", "/cc"]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=-5, max_value=1e6),
            st.integers(min_value=0, max_value=3),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_call_answers_every_batch_as_full_validation_does(
    batches: list[tuple[str, float, float, int]],
) -> None:
    call = PushCall(100)
    for route, latency, requests, time_unix_ms in batches:
        data = batch(latency, requests, route=route, time_unix_ms=time_unix_ms)
        try:
            expected: object = (full(data), time_unix_ms)
        except InvalidBatch as exc:
            expected = str(exc)
        try:
            samples, when = call.validate_encoded(data)
            got: object = ([tuple(s) for s in samples], when)
        except InvalidBatch as exc:
            got = str(exc)
        assert got == expected
