"""OTLP request translation: kinds, temporality, names, partial rejection."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as otlp
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector.otlp import translate
from collector.series import COUNTER, GAUGE, HISTOGRAM, HistogramData, SeriesKey

DELTA = otlp.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = otlp.AGGREGATION_TEMPORALITY_CUMULATIVE


def request(*metrics: otlp.Metric, service: str | None = "checkout") -> ExportMetricsServiceRequest:
    attributes = (
        [KeyValue(key="service.name", value=AnyValue(string_value=service))] if service else []
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            otlp.ResourceMetrics(
                resource=Resource(attributes=attributes),
                scope_metrics=[otlp.ScopeMetrics(metrics=metrics)],
            )
        ]
    )


def point(value: float, **attrs: str) -> otlp.NumberDataPoint:
    return otlp.NumberDataPoint(
        as_double=value,
        start_time_unix_nano=5_000_000,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()],
    )


def test_gauge_with_dotted_names_and_attributes() -> None:
    metric = otlp.Metric(
        name="queue.depth",
        unit="1",
        gauge=otlp.Gauge(data_points=[point(3, **{"queue.name": "a"})]),
    )
    out = translate(request(metric))
    [sample] = out.samples["checkout"].values()
    assert sample.key == SeriesKey("queue_depth", (("queue_name", "a"),))
    assert (sample.descriptor.kind, sample.descriptor.unit, sample.value) == (GAUGE, "1", 3.0)
    assert out.rejected == 0


def test_monotonic_sum_is_a_counter_and_delta_accumulates() -> None:
    metric = otlp.Metric(
        name="requests",
        sum=otlp.Sum(is_monotonic=True, aggregation_temporality=DELTA, data_points=[point(2)]),
    )
    [sample] = translate(request(metric)).samples["checkout"].values()
    assert sample.descriptor.kind == COUNTER and sample.accumulate
    assert sample.descriptor.start_time_unix_ms == 5


def test_cumulative_updown_sum_is_a_gauge_value() -> None:
    metric = otlp.Metric(
        name="in_flight",
        sum=otlp.Sum(
            is_monotonic=False, aggregation_temporality=CUMULATIVE, data_points=[point(4)]
        ),
    )
    [sample] = translate(request(metric)).samples["checkout"].values()
    assert sample.descriptor.kind == GAUGE and not sample.accumulate and sample.value == 4


def test_explicit_histogram() -> None:
    hp = otlp.HistogramDataPoint(
        count=3, sum=7.5, bucket_counts=[1, 2, 0], explicit_bounds=[1, 5], min=0.5, max=4
    )
    metric = otlp.Metric(
        name="latency",
        unit="ms",
        histogram=otlp.Histogram(aggregation_temporality=CUMULATIVE, data_points=[hp]),
    )
    [sample] = translate(request(metric)).samples["checkout"].values()
    assert sample.descriptor.kind == HISTOGRAM
    assert sample.value == HistogramData((1.0, 5.0), (1, 2, 0), 3, 7.5, 0.5, 4.0)


def test_exponential_histograms_and_summaries_are_reported_rejected() -> None:
    exp = otlp.Metric(
        name="exp",
        exponential_histogram=otlp.ExponentialHistogram(
            data_points=[otlp.ExponentialHistogramDataPoint(count=1)] * 2
        ),
    )
    summary = otlp.Metric(
        name="sum", summary=otlp.Summary(data_points=[otlp.SummaryDataPoint(count=1)])
    )
    ok = otlp.Metric(name="ok", gauge=otlp.Gauge(data_points=[point(1)]))
    out = translate(request(exp, summary, ok))
    assert out.rejected == 3
    assert "exponential histograms" in out.error_message() and "summaries" in out.error_message()
    assert list(out.samples["checkout"]) == [SeriesKey("ok")]


def test_invalid_histogram_point_is_rejected_not_the_request() -> None:
    bad = otlp.HistogramDataPoint(count=1, bucket_counts=[1], explicit_bounds=[1, 2])
    metric = otlp.Metric(
        name="h", histogram=otlp.Histogram(aggregation_temporality=DELTA, data_points=[bad])
    )
    out = translate(request(metric))
    assert out.rejected == 1 and "histogram.data_points[0].counts" in out.error_message()


def test_missing_service_name_uses_unknown_service() -> None:
    metric = otlp.Metric(name="g", gauge=otlp.Gauge(data_points=[point(1)]))
    assert list(translate(request(metric, service=None)).samples) == ["unknown_service"]


def test_no_recorded_value_removes_the_series() -> None:
    p = point(0)
    p.flags = otlp.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    metric = otlp.Metric(name="g", gauge=otlp.Gauge(data_points=[p]))
    [sample] = translate(request(metric)).samples["checkout"].values()
    assert sample.remove
