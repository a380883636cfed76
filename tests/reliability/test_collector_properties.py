"""The collector's Push validation and OTLP translation under random, well-typed input.

- `validate_push`: any PushRequest either yields samples or raises
  `InvalidBatch` naming a field; nothing else escapes.
- `OtlpReceiver.export`: any ExportMetricsServiceRequest (every data type,
  temporality, NaN/inf, empty and inconsistent histograms, odd scales, any
  attributes) never raises; every data point is accepted or counted in
  `partial_success.rejected_data_points`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as otlp

from collector.config import CollectorConfig
from collector.errors import InvalidBatch
from collector.hub import CollectorHub
from collector.otlp_receiver import OtlpReceiver
from collector.validation import validate_push
from metrics_bridge.v1 import collector_pb2, metrics_pb2

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e308])
small_text = st.text(max_size=12) | st.sampled_from(["svc", "m", "service.name", "a.b-c", ""])
u64 = st.integers(0, 2**64 - 1)


def any_value() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        st.builds(lambda v: AnyValue(string_value=v), small_text),
        st.builds(lambda v: AnyValue(int_value=v), st.integers(-(2**63), 2**63 - 1)),
        st.builds(lambda v: AnyValue(double_value=v), floats),
        st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
        st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=8)),
        st.just(AnyValue()),
    )


attributes = st.lists(
    st.builds(lambda k, v: KeyValue(key=k, value=v), small_text, any_value()), max_size=4
)


def number_point(kind: str) -> st.SearchStrategy[otlp.NumberDataPoint]:
    def build(
        attrs: list[KeyValue], value: float, start: int, time: int, flags: int
    ) -> otlp.NumberDataPoint:
        point = otlp.NumberDataPoint(
            attributes=attrs, start_time_unix_nano=start, time_unix_nano=time, flags=flags
        )
        if kind == "int":
            point.as_int = int(value) if value == value and abs(value) < 2**62 else 7
        elif kind == "double":
            point.as_double = value
        return point

    return st.builds(build, attributes, floats, u64, u64, st.sampled_from([0, 1]))


number_points = st.one_of(number_point("int"), number_point("double"), number_point("none"))


def histogram_point(
    attrs: list[KeyValue], bounds: list[float], counts: list[int], total: int, flags: int
) -> otlp.HistogramDataPoint:
    return otlp.HistogramDataPoint(
        attributes=attrs,
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=total,
        sum=1.0,
        flags=flags,
    )


histogram_points = st.builds(
    histogram_point,
    attributes,
    st.lists(floats, max_size=5),
    st.lists(st.integers(0, 2**40), max_size=6),
    st.integers(0, 2**41),
    st.sampled_from([0, 1]),
)


def exponential_point(
    scale: int, zero: int, offset: int, counts: list[int], negative: list[int], total: int
) -> otlp.ExponentialHistogramDataPoint:
    point = otlp.ExponentialHistogramDataPoint(scale=scale, zero_count=zero, count=total)
    point.positive.offset = offset
    point.positive.bucket_counts.extend(counts)
    point.negative.bucket_counts.extend(negative)
    return point


exponential_points = st.builds(
    exponential_point,
    st.integers(-30, 30),
    st.integers(0, 100),
    st.integers(-(2**31), 2**31 - 1),
    st.lists(st.integers(0, 1000), max_size=8),
    st.lists(st.integers(0, 1000), max_size=3),
    st.integers(0, 5000),
)


def summary_point(
    quantiles: list[tuple[float, float]], total: int, value: float
) -> otlp.SummaryDataPoint:
    point = otlp.SummaryDataPoint(count=total, sum=value)
    for q, v in quantiles:
        point.quantile_values.add(quantile=q, value=v)
    return point


summary_points = st.builds(
    summary_point, st.lists(st.tuples(floats, floats), max_size=3), u64, floats
)
temporality = st.sampled_from([0, 1, 2, 5])


def metric(name: str, unit: str, data: tuple[str, list[object], int, bool]) -> otlp.Metric:
    kind, points, temp, monotonic = data
    out = otlp.Metric(name=name, unit=unit)
    if kind == "gauge":
        out.gauge.data_points.extend(points)  # type: ignore[arg-type]
    elif kind == "sum":
        out.sum.data_points.extend(points)  # type: ignore[arg-type]
        out.sum.aggregation_temporality = temp  # type: ignore[assignment]
        out.sum.is_monotonic = monotonic
    elif kind == "histogram":
        out.histogram.data_points.extend(points)  # type: ignore[arg-type]
        out.histogram.aggregation_temporality = temp  # type: ignore[assignment]
    elif kind == "exponential":
        out.exponential_histogram.data_points.extend(points)  # type: ignore[arg-type]
        out.exponential_histogram.aggregation_temporality = temp  # type: ignore[assignment]
    elif kind == "summary":
        out.summary.data_points.extend(points)  # type: ignore[arg-type]
    return out


metric_data = st.one_of(
    st.tuples(st.just("gauge"), st.lists(number_points, max_size=3), temporality, st.booleans()),
    st.tuples(st.just("sum"), st.lists(number_points, max_size=3), temporality, st.booleans()),
    st.tuples(
        st.just("histogram"), st.lists(histogram_points, max_size=3), temporality, st.booleans()
    ),
    st.tuples(
        st.just("exponential"),
        st.lists(exponential_points, max_size=2),
        temporality,
        st.booleans(),
    ),
    st.tuples(st.just("summary"), st.lists(summary_points, max_size=2), temporality, st.booleans()),
    st.tuples(st.just("none"), st.just([]), temporality, st.booleans()),
)
metrics = st.builds(
    metric, small_text, st.sampled_from(["", "ms", "By", "{req}/s", "1"]), metric_data
)


def request(
    resources: list[tuple[list[KeyValue], list[list[otlp.Metric]]]],
) -> ExportMetricsServiceRequest:
    out = ExportMetricsServiceRequest()
    for attrs, scopes in resources:
        resource_metrics = out.resource_metrics.add()
        resource_metrics.resource.attributes.extend(attrs)
        for scope_metrics in scopes:
            resource_metrics.scope_metrics.add().metrics.extend(scope_metrics)
    return out


service_attrs = st.lists(
    st.builds(
        lambda k, v: KeyValue(key=k, value=AnyValue(string_value=v)),
        st.sampled_from(["service.name", "service.instance.id", "host.name"]),
        st.sampled_from(["svc", "other", "", "a b", "x" * 300]),
    ),
    max_size=3,
)
requests = st.builds(
    request,
    st.lists(
        st.tuples(service_attrs, st.lists(st.lists(metrics, max_size=3), min_size=1, max_size=2)),
        max_size=3,
    ),
)


def data_points(request: ExportMetricsServiceRequest) -> int:
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for m in scope_metrics.metrics:
                data = m.WhichOneof("data")
                total += len(getattr(m, data).data_points) if data else 1
    return total


@FAST
@given(st.lists(requests, min_size=1, max_size=3))
def test_otlp_export_never_raises_and_accounts_for_every_point(
    batch: list[ExportMetricsServiceRequest],
) -> None:
    hub = CollectorHub(CollectorConfig().hub_limits())
    receiver = OtlpReceiver(hub, clock=lambda: 1000, monotonic=lambda: 1.0)
    for item in batch:
        response = receiver.export(item)
        rejected = response.partial_success.rejected_data_points
        assert 0 <= rejected <= max(1, data_points(item)) * 4  # a summary point is 3+ series
        if rejected:
            assert response.partial_success.error_message


samples = st.builds(
    lambda name, kind, value, remove, labels: collector_pb2.Sample(
        name=name,
        kind=kind,
        number=value,
        remove=remove,
        labels=[metrics_pb2.Label(name=k, value=v) for k, v in labels],
    ),
    small_text,
    st.sampled_from([0, 1, 2, 3, 99]),
    floats,
    st.booleans(),
    st.lists(st.tuples(small_text, small_text), max_size=3),
)


@FAST
@given(
    st.builds(
        lambda source, items, time, instance: collector_pb2.PushRequest(
            source=source, samples=items, time_unix_ms=time, instance=instance
        ),
        small_text,
        st.lists(samples, max_size=6),
        st.integers(-(2**63), 2**63 - 1),
        small_text,
    )
)
def test_push_validation_returns_samples_or_names_the_bad_field(
    push: collector_pb2.PushRequest,
) -> None:
    try:
        out = validate_push(push, max_samples=4)
    except InvalidBatch as error:
        assert str(error)
        return
    assert len(out) == len(push.samples) <= 4
