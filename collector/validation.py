"""The rules a pushed batch must follow, and the check that turns a
`PushRequest` into samples or an `InvalidBatch` naming the first bad field
("samples[3].labels[1].name: ...").

Rules (Prometheus-compatible names so the data can go anywhere later):
- source: 1..128 characters of [A-Za-z0-9_.:-] (it becomes part of a channel
  name "<collector>/<source>", so no "/").
- batch: at most `max_samples` samples; no series (name + labels) twice.
- name: [a-zA-Z_:][a-zA-Z0-9_:]*, at most 200 characters.
- labels: at most 32; name [a-zA-Z_][a-zA-Z0-9_]* (at most 100 characters,
  not starting with "__", which Prometheus reserves), unique within the
  sample; value at most 1024 characters.
- unit at most 64 characters, description at most 1024.
- kind GAUGE or COUNTER with a finite `number` (a counter's is >= 0), or
  HISTOGRAM with a `histogram`: at most 128 finite, strictly increasing
  bounds, len(counts) == len(bounds) + 1, count == sum(counts), finite sum.
- remove = true needs only name and labels.
- time_unix_ms and start_time_unix_ms are not negative.
- instance (optional): at most 1024 characters; when set, every sample gets
  the label instance="<instance>" (counted in the 32) and may not carry its
  own `instance` label.
- call: every batch of one Push call names the same source and the same
  instance (`PushCall`).
- PushBatches: at most `MAX_BATCHES_PER_MESSAGE` batches per message, each
  under the rules above (`encoded_batches`).
- A call's batch encoded like its last one, but for its numbers, costs a
  byte comparison (collector/batch_template.py): same bytes, same series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from google.protobuf.message import DecodeError

from collector.batch_template import BatchTemplate, split_fields
from collector.errors import InvalidBatch
from collector.series import COUNTER, GAUGE, HISTOGRAM, Descriptor, HistogramData, SeriesKey
from collector.series import SeriesSample as Sample
from metrics_bridge.v1 import collector_pb2

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
SOURCE_NAME = re.compile(r"[A-Za-z0-9_.:-]+")

__all__ = [
    "MAX_BATCHES_PER_MESSAGE",
    "KnownSeries",
    "PushCall",
    "check_histogram",
    "check_series",
    "check_source_name",
    "encoded_batches",
    "sanitize_label_name",
    "sanitize_metric_name",
    "sanitize_source_name",
    "validate_push",
]

MAX_SOURCE_NAME = 128
MAX_METRIC_NAME = 200
MAX_LABELS = 32
MAX_LABEL_NAME = 100
MAX_LABEL_VALUE = 1024
MAX_UNIT = 64
MAX_DESCRIPTION = 1024
MAX_BOUNDS = 128
INSTANCE_LABEL = "instance"
MAX_BATCHES_PER_MESSAGE = 1024
KNOWN_SERIES_BYTES = 256 * 1024
"""Per Push call, the most bytes of checked-series identities remembered."""


Checked = tuple[SeriesKey, Descriptor, bool]
"""A sample's key, descriptor and `remove` flag, as validated."""


class KnownSeries:
    """The series one Push call already checked, by identity (everything but the
    value, encoded).

    Bounded by the bytes of the identities: once past `limit` it starts over,
    so a sender whose series change every batch costs what it did before."""

    def __init__(self, limit: int = KNOWN_SERIES_BYTES) -> None:
        self.limit = limit
        self._checked: dict[bytes, Checked] = {}
        self._bytes = 0
        self.get: Callable[[bytes], Checked | None] = self._checked.get

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def put(self, ident: bytes, checked: Checked) -> None:
        if self._bytes + len(ident) > self.limit:
            self._checked.clear()
            self._bytes = 0
        self._checked[ident] = checked
        self._bytes += len(ident)


def encoded_batches(message: bytes) -> list[bytes]:
    """The encoded batches of an encoded PushBatchesRequest, or InvalidBatch if it
    is not one or holds too many."""
    batches = _tagged_batches(message)
    if batches is None:
        batches = _walked_batches(message)
    if len(batches) > MAX_BATCHES_PER_MESSAGE:
        raise InvalidBatch(
            "batches", f"at most {MAX_BATCHES_PER_MESSAGE} per message, got {len(batches)}"
        )
    return batches


_BATCHES_TAG = 0x0A  # PushBatchesRequest.batches = 1, length-delimited


def _tagged_batches(message: bytes) -> list[bytes] | None:
    """The batches of a message that is nothing but `batches` fields under
    16 KiB each (length varints of one or two bytes), as every protobuf library
    writes it: a walk without a varint loop. None for anything else, which
    `_walked_batches` then reads or refuses."""
    batches = []
    pos, size = 0, len(message)
    while pos < size:
        if message[pos] != _BATCHES_TAG or pos + 2 > size:
            return None
        length = message[pos + 1]
        start = pos + 2
        if length >= 0x80:
            if start >= size or message[start] >= 0x80:
                return None
            length = length - 0x80 | message[start] << 7
            start += 1
        pos = start + length
        if pos > size:
            return None
        batches.append(message[start:pos])
    return batches


def _walked_batches(message: bytes) -> list[bytes]:
    try:
        fields = split_fields(message)
    except ValueError as exc:
        raise InvalidBatch("batches", f"not an encoded PushBatchesRequest: {exc}") from exc
    batches = []
    for number, wire, start, end in fields:
        if number == 1:
            if wire != 2:
                raise InvalidBatch("batches", "not an encoded PushBatchesRequest: wrong wire type")
            batches.append(message[start:end])
    return batches


def check_source_name(name: str) -> str | None:
    """None if `name` is a valid source name, else why not."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_SOURCE_NAME:
        return f"must be at most {MAX_SOURCE_NAME} characters, got {len(name)}"
    if not SOURCE_NAME.fullmatch(name):
        return f"{name!r} must match [A-Za-z0-9_.:-]+"
    return None


def sanitize_source_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)[:MAX_SOURCE_NAME]


def sanitize_metric_name(name: str) -> str:
    """OTLP names to Prometheus style: every other character (dots...) becomes "_"."""
    clean = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    return "_" + clean if not clean or clean[0].isdigit() else clean


def sanitize_label_name(name: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + clean if not clean or clean[0].isdigit() else clean


def check_series(name: str, labels: list[tuple[str, str]], path: str) -> SeriesKey:
    """The key for a name and labels, or InvalidBatch naming `path`'s bad field."""
    if not METRIC_NAME.fullmatch(name):
        raise InvalidBatch(f"{path}.name", f"{name!r} must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    if len(name) > MAX_METRIC_NAME:
        raise InvalidBatch(f"{path}.name", f"must be at most {MAX_METRIC_NAME} characters")
    if len(labels) > MAX_LABELS:
        raise InvalidBatch(f"{path}.labels", f"at most {MAX_LABELS} labels, got {len(labels)}")
    seen: set[str] = set()
    for j, (label, value) in enumerate(labels):
        field = f"{path}.labels[{j}]"
        if not LABEL_NAME.fullmatch(label):
            raise InvalidBatch(f"{field}.name", f"{label!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if label.startswith("__"):
            raise InvalidBatch(f"{field}.name", f"{label!r}: names starting with __ are reserved")
        if len(label) > MAX_LABEL_NAME:
            raise InvalidBatch(f"{field}.name", f"must be at most {MAX_LABEL_NAME} characters")
        if label in seen:
            raise InvalidBatch(f"{field}.name", f"{label!r} appears twice")
        if len(value) > MAX_LABEL_VALUE:
            raise InvalidBatch(f"{field}.value", f"must be at most {MAX_LABEL_VALUE} characters")
        seen.add(label)
    return SeriesKey.of(name, labels)


def check_histogram(h: HistogramData, path: str) -> None:
    if len(h.bounds) > MAX_BOUNDS:
        raise InvalidBatch(f"{path}.bounds", f"at most {MAX_BOUNDS} bounds, got {len(h.bounds)}")
    for i, bound in enumerate(h.bounds):
        if not math.isfinite(bound):
            raise InvalidBatch(f"{path}.bounds[{i}]", "must be finite")
        if i and bound <= h.bounds[i - 1]:
            raise InvalidBatch(f"{path}.bounds[{i}]", "bounds must be strictly increasing")
    if len(h.counts) != len(h.bounds) + 1:
        raise InvalidBatch(
            f"{path}.counts",
            f"needs len(bounds) + 1 = {len(h.bounds) + 1} entries, got {len(h.counts)}",
        )
    if h.count != sum(h.counts):
        raise InvalidBatch(f"{path}.count", f"{h.count} is not the sum of counts {sum(h.counts)}")
    for field, value in (("sum", h.sum), ("min", h.min), ("max", h.max)):
        if value is not None and not math.isfinite(value):
            raise InvalidBatch(f"{path}.{field}", "must be finite")


def validate_push(
    request: collector_pb2.PushRequest,
    max_samples: int,
    known: KnownSeries | None = None,
) -> list[Sample]:
    """The batch's samples, or InvalidBatch naming the first bad field.

    `known`: series already checked, by the encoding of everything but their
    value; a Push call passes its own (its instance never changes), so a
    series it sends again costs a lookup, not the name and label checks."""
    problem = check_source_name(request.source)
    if problem:
        raise InvalidBatch("source", problem)
    if request.time_unix_ms < 0:
        raise InvalidBatch("time_unix_ms", "must not be negative")
    if len(request.instance) > MAX_LABEL_VALUE:
        raise InvalidBatch("instance", f"must be at most {MAX_LABEL_VALUE} characters")
    instance = [(INSTANCE_LABEL, request.instance)] if request.instance else []
    if len(request.samples) > max_samples:
        raise InvalidBatch(
            "samples", f"at most {max_samples} samples per batch, got {len(request.samples)}"
        )
    out: list[Sample] = []
    first_index: dict[SeriesKey, int] = {}
    known = KnownSeries() if known is None else known
    get = known.get
    for i, s in enumerate(request.samples):
        number: float | None = None
        if s.HasField("number"):
            number = s.number
            s.ClearField("number")
            ident: bytes | None = s.SerializeToString()
            s.number = number
        else:  # a histogram's identity would need its buckets cleared too
            ident = None if s.HasField("histogram") else s.SerializeToString()
        checked = get(ident) if ident is not None else None
        if checked is None:
            labels = [(lb.name, lb.value) for lb in s.labels]
            checked = _check_sample(s, labels, instance, f"samples[{i}]")
            if ident is not None:
                known.put(ident, checked)
        key, descriptor, remove = checked
        if key in first_index:
            raise InvalidBatch(f"samples[{i}]", f"same series as samples[{first_index[key]}]")
        first_index[key] = i
        if remove:
            out.append(Sample(key, descriptor, remove=True))
        elif descriptor.kind == HISTOGRAM:
            path = f"samples[{i}]"
            if s.WhichOneof("value") != "histogram":
                raise InvalidBatch(f"{path}.histogram", "a histogram needs a histogram value")
            histogram = HistogramData.from_proto(s.histogram)
            check_histogram(histogram, f"{path}.histogram")
            out.append(Sample(key, descriptor, histogram))
        else:
            if number is None:
                raise InvalidBatch(f"samples[{i}].number", "a gauge or counter needs a number")
            if not math.isfinite(number):
                raise InvalidBatch(f"samples[{i}].number", f"must be finite, got {number}")
            if number < 0 and descriptor.kind == COUNTER:
                raise InvalidBatch(
                    f"samples[{i}].number", f"a counter cannot be negative: {number}"
                )
            out.append(Sample(key, descriptor, number))
    return out


def _check_sample(
    s: collector_pb2.Sample,
    labels: list[tuple[str, str]],
    instance: list[tuple[str, str]],
    path: str,
) -> Checked:
    """The key, descriptor and remove flag of a sample, checked; what a call may remember."""
    if instance and any(name == INSTANCE_LABEL for name, _ in labels):
        raise InvalidBatch(
            f"{path}.labels", "'instance' is set by the request's instance; leave it out"
        )
    key = check_series(s.name, labels + instance, path)
    if s.remove:
        return key, Descriptor(s.kind), True
    if len(s.unit) > MAX_UNIT:
        raise InvalidBatch(f"{path}.unit", f"must be at most {MAX_UNIT} characters")
    if len(s.description) > MAX_DESCRIPTION:
        raise InvalidBatch(f"{path}.description", f"must be at most {MAX_DESCRIPTION} characters")
    if s.start_time_unix_ms < 0:
        raise InvalidBatch(f"{path}.start_time_unix_ms", "must not be negative")
    if s.kind not in (GAUGE, COUNTER, HISTOGRAM):
        raise InvalidBatch(f"{path}.kind", f"must be GAUGE, COUNTER or HISTOGRAM, got {s.kind}")
    return key, Descriptor(s.kind, s.unit, s.description, s.start_time_unix_ms), False


class PushCall:
    """The batches of one Push call: each is validated, and all name one source
    and one instance, so a call's response position is that source's."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.source = ""
        self.instance = ""
        self.batches = 0
        self._known = KnownSeries()
        self._template: BatchTemplate | None = None

    def validate(self, request: collector_pb2.PushRequest) -> list[Sample]:
        if self.source and request.source != self.source:
            raise InvalidBatch(
                "source", f"changed from {self.source!r} to {request.source!r} within one call"
            )
        if self.batches and request.instance != self.instance:
            raise InvalidBatch(
                "instance",
                f"changed from {self.instance!r} to {request.instance!r} within one call",
            )
        samples = validate_push(request, self.max_samples, self._known)
        self.source, self.instance = request.source, request.instance
        self.batches += 1
        return samples

    def validate_encoded(self, data: bytes) -> tuple[Sequence[Sample], int]:
        """An encoded batch's samples and its time_unix_ms; `validate`'s rules, with
        a batch that matches the call's template (the last batch) checked by bytes."""
        template = self._template
        if template is not None:
            matched = template.match(data)
            if matched is not None:
                samples, tail = matched
                if not tail:
                    self.batches += 1
                    return samples, 0
                try:
                    rest = collector_pb2.PushRequest.FromString(tail)
                except DecodeError:
                    rest = None
                if (
                    rest is not None
                    and not rest.source
                    and not rest.samples
                    and rest.time_unix_ms >= 0
                    and rest.instance == self.instance
                ):
                    self.batches += 1
                    return samples, rest.time_unix_ms
        try:
            request = collector_pb2.PushRequest.FromString(data)
        except DecodeError as exc:
            raise InvalidBatch("batch", f"not an encoded PushRequest: {exc}") from exc
        validated = self.validate(request)
        self._template = BatchTemplate.of(data, validated)
        return validated, request.time_unix_ms
