"""OTLP metrics (opentelemetry.proto) to the collector's samples. Pure.

Rules:
- Source, instance and the labels a resource and scope add: collector.otlp_instances
  (`service.name` is the source, `service.instance.id` / `k8s.pod.name` /
  `host.name` the `instance` label, an allowlist of other attributes kept).
  Samples are grouped by origin (source, instance), so a replica's batch only
  ever sets, removes or expires its own series.
- Metric and attribute names are sanitized to Prometheus style: every
  character outside [a-zA-Z0-9_:] (dots, dashes...) becomes "_", and a name
  starting with a digit gets a leading "_". Attributes become labels (values
  as strings: true/false, numbers, arrays as JSON). Units: collector.otlp_units.
- Gauge -> gauge.
- Sum: monotonic -> counter, otherwise (up-down counter) gauge. CUMULATIVE
  points are the value; DELTA points are added to the series' current value
  (`accumulate`), so the collector always holds the running total.
- A counter's or histogram's start_time_unix_nano is its descriptor's start
  time: a cumulative series whose start time changes (the process restarted)
  is re-declared, which is how the wire announces a reset.
- Explicit-bucket histogram -> histogram (DELTA accumulates too).
- Exponential histogram -> histogram, held natively and sent as explicit
  buckets at the exponential boundaries (collector.exponential: every count
  kept; a bucket's estimate within a factor 2**(2**-scale) of the value).
- Summary -> one gauge per quantile, `<name>{quantile="0.99"}`, plus
  `<name>_count` (counter) and `<name>_sum` (counter, gauge if negative).
- A point flagged "no recorded value" removes its series (a summary's: its
  quantile, _count and _sum series).
- Exemplars are dropped on purpose: the wire has no place for them.
- Rejected, counted and described in partial_success (never the whole
  request): sums and histograms of unspecified temporality, metrics with no
  data, and points that break validation rules (non-finite values, negative
  monotonic sums, too many labels, bad bucket layouts, exponential scales
  outside [-10, 20] or boundaries beyond a double).
- Several points for one series in one request: the last wins (deltas add).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as otlp

from collector.errors import InvalidBatch
from collector.exponential import Buckets, ExponentialHistogramData
from collector.otlp_instances import (
    DEFAULT_SOURCE,
    Labels,
    Origin,
    ResourceRules,
    attribute_labels,
    merge_labels,
)
from collector.otlp_units import ucum
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
    MAX_BOUNDS,
    MAX_DESCRIPTION,
    check_histogram,
    check_series,
    sanitize_metric_name,
)
from metrics_bridge.v1 import metrics_pb2

__all__ = ["DEFAULT_SOURCE", "Translation", "translate"]

Kind: TypeAlias = metrics_pb2.MetricKind.ValueType

NO_RECORDED_VALUE = otlp.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
DELTA = otlp.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = otlp.AGGREGATION_TEMPORALITY_CUMULATIVE
MAX_ERRORS_REPORTED = 5
MIN_SCALE, MAX_SCALE = -10, 20


@dataclass
class Translation:
    """Samples by origin (source, instance), plus what was rejected and why."""

    batches: dict[Origin, dict[SeriesKey, SeriesSample]] = field(default_factory=dict)
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

    @property
    def sources(self) -> set[str]:
        return {origin.source for origin in self.batches}

    def samples(self, source: str) -> dict[SeriesKey, SeriesSample]:
        """Every sample for `source`, whatever its instance."""
        out: dict[SeriesKey, SeriesSample] = {}
        for origin, by_key in self.batches.items():
            if origin.source == source:
                out.update(by_key)
        return out

    def add(self, origin: Origin, sample: SeriesSample) -> None:
        by_key = self.batches.setdefault(origin, {})
        before = by_key.get(sample.key)
        if (
            before is not None
            and before.accumulate
            and sample.accumulate
            and before.descriptor.kind == sample.descriptor.kind
        ):
            total = _plus(before, sample)
            if total is not None:
                sample = SeriesSample(sample.key, before.descriptor, total, accumulate=True)
        by_key[sample.key] = sample


def _plus(
    a: SeriesSample, b: SeriesSample
) -> float | HistogramData | ExponentialHistogramData | None:
    if isinstance(a.value, float) and isinstance(b.value, float):
        return a.value + b.value
    if (
        isinstance(a.value, HistogramData)
        and isinstance(b.value, HistogramData)
        and a.value.bounds == b.value.bounds
    ):
        return a.value.plus(b.value)
    if isinstance(a.value, ExponentialHistogramData) and isinstance(
        b.value, ExponentialHistogramData
    ):
        return a.value.plus(b.value)
    return None


def translate(
    request: ExportMetricsServiceRequest, rules: ResourceRules | None = None
) -> Translation:
    rules = rules or ResourceRules()
    out = Translation()
    for r, resource_metrics in enumerate(request.resource_metrics):
        origin, resource_labels = rules.origin(resource_metrics.resource.attributes)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            added = resource_labels + rules.scope_labels(scope_metrics.scope)
            for m, metric in enumerate(scope_metrics.metrics):
                path = f"resource_metrics[{r}].scope_metrics[{s}].metrics[{m}]"
                _Metric(out, origin, added, metric, path).translate()
    return out


@dataclass
class _Metric:
    """One OTLP metric's points into samples of one origin."""

    out: Translation
    origin: Origin
    added: Labels
    metric: otlp.Metric
    path: str

    def translate(self) -> None:
        metric = self.metric
        kind = metric.WhichOneof("data")
        if kind == "gauge":
            for i, point in enumerate(metric.gauge.data_points):
                self.number(point, GAUGE, False, f"gauge.data_points[{i}]")
        elif kind == "sum":
            total = metric.sum
            if self.unspecified(total.aggregation_temporality, len(total.data_points), "sum"):
                return
            metric_kind = COUNTER if total.is_monotonic else GAUGE
            for i, point in enumerate(total.data_points):
                delta = total.aggregation_temporality == DELTA
                self.number(point, metric_kind, delta, f"sum.data_points[{i}]")
        elif kind == "histogram":
            hist = metric.histogram
            if self.unspecified(hist.aggregation_temporality, len(hist.data_points), "histogram"):
                return
            for i, hp in enumerate(hist.data_points):
                delta = hist.aggregation_temporality == DELTA
                self.histogram(hp, delta, f"histogram.data_points[{i}]")
        elif kind == "exponential_histogram":
            exp = metric.exponential_histogram
            if self.unspecified(
                exp.aggregation_temporality, len(exp.data_points), "exponential histogram"
            ):
                return
            for i, ep in enumerate(exp.data_points):
                delta = exp.aggregation_temporality == DELTA
                self.exponential(ep, delta, f"exponential_histogram.data_points[{i}]")
        elif kind == "summary":
            for i, sp in enumerate(metric.summary.data_points):
                self.summary(sp, f"summary.data_points[{i}]")
        else:
            self.out.reject(1, f"{self.path} ({metric.name}): a metric without data")

    def unspecified(self, temporality: int, points: int, what: str) -> bool:
        if temporality in (DELTA, CUMULATIVE):
            return False
        self.out.reject(
            points,
            f"{self.path} ({self.metric.name}): a {what} with unspecified aggregation "
            "temporality (neither DELTA nor CUMULATIVE)",
        )
        return True

    def descriptor(self, kind: Kind, start_unix_nano: int = 0) -> Descriptor:
        start = start_unix_nano // 1_000_000 if kind in (COUNTER, HISTOGRAM) else 0
        return Descriptor(
            kind,
            ucum(self.metric.unit),
            self.metric.description[:MAX_DESCRIPTION],
            start,
        )

    def key(
        self, attributes: Iterable[KeyValue], path: str, suffix: str = "", **extra: str
    ) -> SeriesKey:
        labels = merge_labels(attribute_labels(attributes), self.added)
        labels += list(extra.items())
        return check_series(sanitize_metric_name(self.metric.name) + suffix, labels, path)

    def number(self, point: otlp.NumberDataPoint, kind: Kind, delta: bool, where: str) -> None:
        path = f"{self.path}.{where}"
        try:
            key = self.key(point.attributes, path)
        except InvalidBatch as exc:
            self.out.reject(1, str(exc))
            return
        descriptor = self.descriptor(kind, point.start_time_unix_nano)
        if point.flags & NO_RECORDED_VALUE:
            self.out.add(self.origin, SeriesSample(key, descriptor, remove=True))
            return
        value = float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double
        if value != value or value in (float("inf"), float("-inf")):
            self.out.reject(1, f"{path}: value must be finite, got {value}")
            return
        if kind == COUNTER and value < 0:
            self.out.reject(1, f"{path}: a monotonic sum cannot be negative, got {value}")
            return
        self.out.add(self.origin, SeriesSample(key, descriptor, value, accumulate=delta))

    def histogram(self, point: otlp.HistogramDataPoint, delta: bool, where: str) -> None:
        path = f"{self.path}.{where}"
        try:
            key = self.key(point.attributes, path)
            descriptor = self.descriptor(HISTOGRAM, point.start_time_unix_nano)
            if point.flags & NO_RECORDED_VALUE:
                self.out.add(self.origin, SeriesSample(key, descriptor, remove=True))
                return
            histogram = HistogramData(
                bounds=tuple(point.explicit_bounds),
                counts=tuple(point.bucket_counts) or (point.count,),
                count=point.count,
                sum=point.sum if point.HasField("sum") else 0.0,
                min=point.min if point.HasField("min") else None,
                max=point.max if point.HasField("max") else None,
            )
            check_histogram(histogram, path)
        except InvalidBatch as exc:
            self.out.reject(1, str(exc))
            return
        self.out.add(self.origin, SeriesSample(key, descriptor, histogram, accumulate=delta))

    def exponential(
        self, point: otlp.ExponentialHistogramDataPoint, delta: bool, where: str
    ) -> None:
        path = f"{self.path}.{where}"
        try:
            key = self.key(point.attributes, path)
            descriptor = self.descriptor(HISTOGRAM, point.start_time_unix_nano)
            if point.flags & NO_RECORDED_VALUE:
                self.out.add(self.origin, SeriesSample(key, descriptor, remove=True))
                return
            histogram = _exponential(point, path)
        except InvalidBatch as exc:
            self.out.reject(1, str(exc))
            return
        self.out.add(self.origin, SeriesSample(key, descriptor, histogram, accumulate=delta))

    def summary(self, point: otlp.SummaryDataPoint, where: str) -> None:
        path = f"{self.path}.{where}"
        remove = bool(point.flags & NO_RECORDED_VALUE)
        try:
            count_key = self.key(point.attributes, path, "_count")
            sum_key = self.key(point.attributes, path, "_sum")
            quantiles = [
                (self.key(point.attributes, path, quantile=_quantile(q.quantile)), q.value)
                for q in point.quantile_values
            ]
        except InvalidBatch as exc:
            self.out.reject(1, str(exc))
            return
        numbers = [point.sum, *(v for _, v in quantiles)]
        if not remove and any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
            self.out.reject(1, f"{path}: sum and quantile values must be finite")
            return
        start = point.start_time_unix_nano
        series = [
            (count_key, self.descriptor(COUNTER, start), float(point.count)),
            (sum_key, self.descriptor(COUNTER if point.sum >= 0 else GAUGE, start), point.sum),
        ] + [(key, self.descriptor(GAUGE), value) for key, value in quantiles]
        for key, descriptor, value in series:
            sample = (
                SeriesSample(key, descriptor, remove=True)
                if remove
                else SeriesSample(key, descriptor, value)
            )
            self.out.add(self.origin, sample)


def _exponential(point: otlp.ExponentialHistogramDataPoint, path: str) -> ExponentialHistogramData:
    if not MIN_SCALE <= point.scale <= MAX_SCALE:
        raise InvalidBatch(f"{path}.scale", f"must be in [{MIN_SCALE}, {MAX_SCALE}]")
    histogram = ExponentialHistogramData(
        scale=point.scale,
        zero_count=point.zero_count,
        positive=Buckets(point.positive.offset, tuple(point.positive.bucket_counts)),
        negative=Buckets(point.negative.offset, tuple(point.negative.bucket_counts)),
        count=point.count,
        sum=point.sum if point.HasField("sum") else 0.0,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        zero_threshold=point.zero_threshold,
    ).normalized()
    total = histogram.zero_count + sum(histogram.positive.counts) + sum(histogram.negative.counts)
    if total != histogram.count:
        raise InvalidBatch(f"{path}.count", f"{histogram.count} is not the sum of counts {total}")
    try:
        bounds, counts = histogram.to_explicit(MAX_BOUNDS)
    except OverflowError as exc:
        raise InvalidBatch(f"{path}.scale", str(exc)) from None
    check_histogram(
        HistogramData(bounds, counts, histogram.count, histogram.sum, histogram.min, histogram.max),
        path,
    )
    return histogram


def _quantile(q: float) -> str:
    """Prometheus spelling: 0.5 -> "0.5", 1.0 -> "1"."""
    return str(int(q)) if float(q).is_integer() else repr(q)
