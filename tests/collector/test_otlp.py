"""OTLP request translation: instances, kept attributes, every metric type,
temporality, units, names, and what partial_success reports."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as otlp
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector.otlp import translate
from collector.otlp_instances import Origin, ResourceRules
from collector.series import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    ExponentialHistogramData,
    HistogramData,
    SeriesKey,
)

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
    [sample] = out.samples("checkout").values()
    assert sample.key == SeriesKey("queue_depth", (("queue_name", "a"),))
    assert (sample.descriptor.kind, sample.descriptor.unit, sample.value) == (GAUGE, "1", 3.0)
    assert out.rejected == 0


def test_monotonic_sum_is_a_counter_and_delta_accumulates() -> None:
    metric = otlp.Metric(
        name="requests",
        sum=otlp.Sum(is_monotonic=True, aggregation_temporality=DELTA, data_points=[point(2)]),
    )
    [sample] = translate(request(metric)).samples("checkout").values()
    assert sample.descriptor.kind == COUNTER and sample.accumulate
    assert sample.descriptor.start_time_unix_ms == 5


def test_cumulative_updown_sum_is_a_gauge_value() -> None:
    metric = otlp.Metric(
        name="in_flight",
        sum=otlp.Sum(
            is_monotonic=False, aggregation_temporality=CUMULATIVE, data_points=[point(4)]
        ),
    )
    [sample] = translate(request(metric)).samples("checkout").values()
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
    [sample] = translate(request(metric)).samples("checkout").values()
    assert sample.descriptor.kind == HISTOGRAM
    assert sample.value == HistogramData((1.0, 5.0), (1, 2, 0), 3, 7.5, 0.5, 4.0)


def test_invalid_histogram_point_is_rejected_not_the_request() -> None:
    bad = otlp.HistogramDataPoint(count=1, bucket_counts=[1], explicit_bounds=[1, 2])
    metric = otlp.Metric(
        name="h", histogram=otlp.Histogram(aggregation_temporality=DELTA, data_points=[bad])
    )
    out = translate(request(metric))
    assert out.rejected == 1 and "histogram.data_points[0].counts" in out.error_message()


def test_missing_service_name_uses_unknown_service() -> None:
    metric = otlp.Metric(name="g", gauge=otlp.Gauge(data_points=[point(1)]))
    assert sorted(translate(request(metric, service=None)).sources) == ["unknown_service"]


def test_no_recorded_value_removes_the_series() -> None:
    p = point(0)
    p.flags = otlp.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    metric = otlp.Metric(name="g", gauge=otlp.Gauge(data_points=[p]))
    [sample] = translate(request(metric)).samples("checkout").values()
    assert sample.remove


def resource_request(
    attributes: dict[str, str], *metrics: otlp.Metric, scope: str = ""
) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(
        resource_metrics=[
            otlp.ResourceMetrics(
                resource=Resource(
                    attributes=[
                        KeyValue(key=k, value=AnyValue(string_value=v))
                        for k, v in attributes.items()
                    ]
                ),
                scope_metrics=[
                    otlp.ScopeMetrics(scope=InstrumentationScope(name=scope), metrics=metrics)
                ],
            )
        ]
    )


def gauge(name: str, value: float, **attrs: str) -> otlp.Metric:
    return otlp.Metric(name=name, gauge=otlp.Gauge(data_points=[point(value, **attrs)]))


def test_replicas_of_one_service_are_one_source_with_an_instance_label_each() -> None:
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            *resource_request(
                {"service.name": "checkout", "service.instance.id": "pod-a"}, gauge("g", 111)
            ).resource_metrics,
            *resource_request(
                {"service.name": "checkout", "service.instance.id": "pod-b"}, gauge("g", 222)
            ).resource_metrics,
        ]
    )
    out = translate(req)
    assert set(out.batches) == {Origin("checkout", "pod-a"), Origin("checkout", "pod-b")}
    values = {k: s.value for k, s in out.samples("checkout").items()}
    assert values == {
        SeriesKey.of("g", [("instance", "pod-a")]): 111,
        SeriesKey.of("g", [("instance", "pod-b")]): 222,
    }


def test_allowlisted_resource_attributes_and_the_scope_name_become_labels() -> None:
    attributes = {
        "service.name": "checkout",
        "host.name": "node-1",
        "service.version": "1.2.3",
        "service.namespace": "shop",
        "deployment.environment": "prod",
        "process.pid": "4711",
    }
    out = translate(resource_request(attributes, gauge("g", 1), scope="checkout.http"))
    [sample] = out.samples("checkout").values()
    assert dict(sample.key.labels) == {
        "instance": "node-1",
        "service_version": "1.2.3",
        "service_namespace": "shop",
        "deployment_environment": "prod",
        "otel_scope_name": "checkout.http",
    }


def test_the_allowlist_is_configurable_and_can_keep_nothing() -> None:
    attributes = {"service.name": "s", "service.version": "1", "cloud.region": "eu"}
    rules = ResourceRules(kept=("cloud.region",))
    [sample] = translate(resource_request(attributes, gauge("g", 1)), rules).samples("s").values()
    assert sample.key.labels == (("cloud_region", "eu"),)
    [bare] = translate(resource_request(attributes, gauge("g", 1)), ResourceRules(())).samples("s")
    assert bare.labels == ()


def test_a_point_attribute_named_like_a_resource_label_is_kept_as_exported() -> None:
    attributes = {"service.name": "s", "service.instance.id": "pod-a"}
    [key] = translate(resource_request(attributes, gauge("g", 1, instance="mine"))).samples("s")
    assert dict(key.labels) == {"instance": "pod-a", "exported_instance": "mine"}


def test_resource_labels_count_towards_the_label_limit() -> None:
    attrs = {f"a{i}": "x" for i in range(32)}
    attributes = {"service.name": "s", "service.instance.id": "pod-a"}
    out = translate(resource_request(attributes, gauge("g", 1, **attrs)))
    assert out.rejected == 1 and "at most 32 labels" in out.error_message()


def test_cumulative_counter_start_time_is_its_descriptor_start() -> None:
    p = point(10)
    p.start_time_unix_nano = 7_000_000_000
    metric = otlp.Metric(
        name="c",
        sum=otlp.Sum(is_monotonic=True, aggregation_temporality=CUMULATIVE, data_points=[p]),
    )
    [sample] = translate(request(metric)).samples("checkout").values()
    assert sample.descriptor.start_time_unix_ms == 7_000 and not sample.accumulate


def test_delta_updown_counter_accumulates_as_a_gauge() -> None:
    metric = otlp.Metric(
        name="inflight",
        sum=otlp.Sum(is_monotonic=False, aggregation_temporality=DELTA, data_points=[point(-2)]),
    )
    [sample] = translate(request(metric)).samples("checkout").values()
    assert sample.descriptor.kind == GAUGE and sample.accumulate and sample.value == -2


def test_summary_becomes_quantile_gauges_count_and_sum() -> None:
    sp = otlp.SummaryDataPoint(
        count=10,
        sum=55.5,
        start_time_unix_nano=3_000_000,
        quantile_values=[
            otlp.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=4),
            otlp.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=9),
        ],
    )
    metric = otlp.Metric(name="rpc.latency", unit="s", summary=otlp.Summary(data_points=[sp]))
    out = translate(request(metric))
    got = {k: (s.descriptor.kind, s.value) for k, s in out.samples("checkout").items()}
    assert got == {
        SeriesKey("rpc_latency_count"): (COUNTER, 10.0),
        SeriesKey("rpc_latency_sum"): (COUNTER, 55.5),
        SeriesKey("rpc_latency", (("quantile", "0.5"),)): (GAUGE, 4.0),
        SeriesKey("rpc_latency", (("quantile", "1"),)): (GAUGE, 9.0),
    }
    assert out.rejected == 0


def test_exponential_histogram_is_taken_and_sent_as_explicit_buckets() -> None:
    ep = otlp.ExponentialHistogramDataPoint(
        scale=1,
        count=4,
        sum=10.0,
        zero_count=1,
        positive=otlp.ExponentialHistogramDataPoint.Buckets(offset=2, bucket_counts=[2, 1]),
        start_time_unix_nano=9_000_000,
    )
    metric = otlp.Metric(
        name="size",
        unit="By",
        exponential_histogram=otlp.ExponentialHistogram(
            aggregation_temporality=CUMULATIVE, data_points=[ep]
        ),
    )
    out = translate(request(metric))
    [sample] = out.samples("checkout").values()
    assert out.rejected == 0
    assert sample.descriptor.kind == HISTOGRAM and sample.descriptor.start_time_unix_ms == 9
    assert isinstance(sample.value, ExponentialHistogramData)
    explicit = HistogramData.from_exponential(sample.value)
    # base sqrt(2): buckets (2, 2.83], (2.83, 4]; the zero bucket below 2.
    assert explicit.bounds == pytest.approx((2.0, 2**1.5, 4.0))
    assert explicit.counts == (1, 2, 1, 0) and explicit.count == 4


def test_exponential_histogram_with_counts_not_adding_up_is_rejected_saying_why() -> None:
    ep = otlp.ExponentialHistogramDataPoint(
        scale=0,
        count=5,
        positive=otlp.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[1]),
    )
    metric = otlp.Metric(
        name="e",
        exponential_histogram=otlp.ExponentialHistogram(
            aggregation_temporality=DELTA, data_points=[ep]
        ),
    )
    out = translate(request(metric))
    assert out.rejected == 1
    assert "exponential_histogram.data_points[0].count" in out.error_message()


def test_only_truly_unsupported_data_is_reported_and_it_says_what() -> None:
    no_data = otlp.Metric(name="empty")
    unspecified = otlp.Metric(name="s", sum=otlp.Sum(data_points=[point(1)]))
    out = translate(request(no_data, unspecified, gauge("ok", 1)))
    assert out.rejected == 2
    assert "(empty): a metric without data" in out.error_message()
    assert "(s): a sum with unspecified aggregation temporality" in out.error_message()
    assert list(out.samples("checkout")) == [SeriesKey("ok")]


def test_exemplars_are_dropped_without_a_rejection() -> None:
    p = point(1)
    p.exemplars.append(otlp.Exemplar(as_double=1, trace_id=b"\x01" * 16, span_id=b"\x02" * 8))
    out = translate(request(otlp.Metric(name="g", gauge=otlp.Gauge(data_points=[p]))))
    assert out.rejected == 0 and len(out.samples("checkout")) == 1


def test_units_are_ucum_without_annotations() -> None:
    metric = otlp.Metric(name="r", unit="{request}", gauge=otlp.Gauge(data_points=[point(1)]))
    [sample] = translate(request(metric)).samples("checkout").values()
    assert sample.descriptor.unit == "1"
