"""OTLP metrics (opentelemetry.proto) to the collector's samples. Pure.

Rules:
- Resource attribute `service.name` names the source (sanitized to a source
  name; "unknown_service" when absent). Other resource and scope attributes
  are not kept.
- Metric and attribute names are sanitized to Prometheus style: every
  character outside [a-zA-Z0-9_:] (dots, dashes...) becomes "_", and a name
  starting with a digit gets a leading "_". Attributes become labels (values
  as strings: true/false, numbers, arrays as JSON).
- Gauge -> gauge. Sum: monotonic -> counter, otherwise gauge; CUMULATIVE
  points are the value, DELTA points are added to the series' current value
  (`accumulate`), so the collector always holds a cumulative total.
- Explicit-bucket histogram -> histogram (DELTA accumulates too).
- A point flagged "no recorded value" removes its series.
- Exponential histograms, summaries, points of unspecified temporality and
  points that break validation rules are rejected: counted, and described in
  the response's partial_success, never the whole request.
- Several points for one series in one request: the last wins (deltas add).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as otlp

from collector.errors import InvalidBatch
from collector.series import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    Descriptor,
    HistogramData,
    SeriesKey,
    SeriesSample,
)
from collector.validation import (
    MAX_DESCRIPTION,
    MAX_UNIT,
    check_histogram,
    check_series,
    sanitize_label_name,
    sanitize_metric_name,
    sanitize_source_name,
)

__all__ = ["DEFAULT_SOURCE", "Translation", "translate"]

DEFAULT_SOURCE = "unknown_service"
NO_RECORDED_VALUE = otlp.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
DELTA = otlp.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = otlp.AGGREGATION_TEMPORALITY_CUMULATIVE
MAX_ERRORS_REPORTED = 5


@dataclass
class Translation:
    """Samples by source name, plus what was rejected and why."""

    samples: dict[str, dict[SeriesKey, SeriesSample]] = field(default_factory=dict)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, count: int, why: str) -> None:
        self.rejected += count
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(why)

    def error_message(self) -> str:
        more = (
            f" (first {MAX_ERRORS_REPORTED} problems shown)"
            if self.rejected > len(self.errors) and len(self.errors) == MAX_ERRORS_REPORTED
            else ""
        )
        return "; ".join(self.errors) + more

    def add(self, source: str, sample: SeriesSample) -> None:
        by_key = self.samples.setdefault(source, {})
        before = by_key.get(sample.key)
        if (
            before is not None
            and before.accumulate
            and sample.accumulate
            and before.descriptor.kind == sample.descriptor.kind
            and isinstance(before.value, float)
            and isinstance(sample.value, float)
        ):
            sample = SeriesSample(
                sample.key, before.descriptor, before.value + sample.value, accumulate=True
            )
        by_key[sample.key] = sample


def translate(request: ExportMetricsServiceRequest) -> Translation:
    out = Translation()
    for r, resource_metrics in enumerate(request.resource_metrics):
        source = _service_name(resource_metrics.resource.attributes)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope_metrics.metrics):
                path = f"resource_metrics[{r}].scope_metrics[{s}].metrics[{m}]"
                _translate_metric(out, source, metric, path)
    return out


def _translate_metric(out: Translation, source: str, metric: otlp.Metric, path: str) -> None:
    kind = metric.WhichOneof("data")
    name = sanitize_metric_name(metric.name)
    unit = metric.unit[:MAX_UNIT]
    description = metric.description[:MAX_DESCRIPTION]
    if kind == "gauge":
        for i, point in enumerate(metric.gauge.data_points):
            _number(
                out,
                source,
                name,
                Descriptor(GAUGE, unit, description),
                point,
                False,
                f"{path}.gauge.data_points[{i}]",
            )
    elif kind == "sum":
        total = metric.sum
        metric_kind = COUNTER if total.is_monotonic else GAUGE
        if total.aggregation_temporality not in (DELTA, CUMULATIVE):
            out.reject(len(total.data_points), f"{path} ({metric.name}): unspecified temporality")
            return
        for i, point in enumerate(total.data_points):
            start = point.start_time_unix_nano // 1_000_000 if metric_kind == COUNTER else 0
            _number(
                out,
                source,
                name,
                Descriptor(metric_kind, unit, description, start),
                point,
                total.aggregation_temporality == DELTA,
                f"{path}.sum.data_points[{i}]",
            )
    elif kind == "histogram":
        hist = metric.histogram
        if hist.aggregation_temporality not in (DELTA, CUMULATIVE):
            out.reject(len(hist.data_points), f"{path} ({metric.name}): unspecified temporality")
            return
        for i, hp in enumerate(hist.data_points):
            _histogram(
                out,
                source,
                name,
                unit,
                description,
                hp,
                hist.aggregation_temporality == DELTA,
                f"{path}.histogram.data_points[{i}]",
            )
    else:
        points = getattr(metric, kind).data_points if kind else ()
        what = {"exponential_histogram": "exponential histograms", "summary": "summaries"}.get(
            kind or "", "metrics without data"
        )
        out.reject(
            max(len(points), 1 if not kind else 0),
            f"{path} ({metric.name}): {what} are not supported",
        )


def _number(
    out: Translation,
    source: str,
    name: str,
    descriptor: Descriptor,
    point: otlp.NumberDataPoint,
    delta: bool,
    path: str,
) -> None:
    try:
        key = check_series(name, _labels(point.attributes), path)
    except InvalidBatch as exc:
        out.reject(1, str(exc))
        return
    if point.flags & NO_RECORDED_VALUE:
        out.add(source, SeriesSample(key, descriptor, remove=True))
        return
    value = float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double
    if value != value or value in (float("inf"), float("-inf")):
        out.reject(1, f"{path}: value must be finite")
        return
    if descriptor.kind == COUNTER and value < 0:
        out.reject(1, f"{path}: a monotonic sum cannot be negative")
        return
    out.add(source, SeriesSample(key, descriptor, value, accumulate=delta))


def _histogram(
    out: Translation,
    source: str,
    name: str,
    unit: str,
    description: str,
    point: otlp.HistogramDataPoint,
    delta: bool,
    path: str,
) -> None:
    try:
        key = check_series(name, _labels(point.attributes), path)
        descriptor = Descriptor(
            HISTOGRAM, unit, description, point.start_time_unix_nano // 1_000_000
        )
        if point.flags & NO_RECORDED_VALUE:
            out.add(source, SeriesSample(key, descriptor, remove=True))
            return
        counts = tuple(point.bucket_counts) or (point.count,)
        histogram = HistogramData(
            bounds=tuple(point.explicit_bounds),
            counts=counts,
            count=point.count,
            sum=point.sum if point.HasField("sum") else 0.0,
            min=point.min if point.HasField("min") else None,
            max=point.max if point.HasField("max") else None,
        )
        check_histogram(histogram, path)
    except InvalidBatch as exc:
        out.reject(1, str(exc))
        return
    out.add(source, SeriesSample(key, descriptor, histogram, accumulate=delta))


def _service_name(attributes: Iterable[KeyValue]) -> str:
    for kv in attributes:
        if kv.key == "service.name" and kv.value.string_value:
            return sanitize_source_name(kv.value.string_value)
    return DEFAULT_SOURCE


def _labels(attributes: Iterable[KeyValue]) -> list[tuple[str, str]]:
    return [(sanitize_label_name(kv.key), _text(kv.value)) for kv in attributes]


def _text(value: AnyValue) -> str:
    return (
        json.dumps(_plain(value))
        if value.WhichOneof("value") in ("array_value", "kvlist_value")
        else str(_plain(value))
    )


def _plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return ""
