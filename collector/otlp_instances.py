"""Which source, instance and labels an OTLP resource and scope stand for. Pure.

Rules:
- Source: the resource's `service.name` (sanitized to a source name;
  "unknown_service" when absent). Replicas of one service share the source.
- Instance: the first non-empty of INSTANCE_ATTRIBUTES
  (`service.instance.id`, then `k8s.pod.name`, then `host.name`), as the
  OTel Collector's Prometheus exporter does for `instance`. It becomes the
  label `instance` on every series of the resource, so replicas never share a
  series; a resource with none of them has no instance label (its series are
  shared by every such sender).
- Kept attributes: resource attributes named in the allowlist
  (`--otlp-keep-attributes`, DEFAULT_KEPT) become labels, their names
  sanitized (`service.version` -> `service_version`). Two pseudo-attributes
  name the instrumentation scope: `otel.scope.name` and `otel.scope.version`
  (labels `otel_scope_name`, `otel_scope_version`). Everything else of the
  resource and the scope is dropped. An empty value adds no label.
- A point attribute whose label name is taken by one of these (e.g. a point's
  own `instance`) is kept as `exported_<name>`, as Prometheus does.
- These labels count towards the 32-label limit of a series like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue

from collector.validation import sanitize_label_name, sanitize_source_name

__all__ = [
    "DEFAULT_KEPT",
    "DEFAULT_SOURCE",
    "INSTANCE_ATTRIBUTES",
    "INSTANCE_LABEL",
    "Origin",
    "ResourceRules",
    "attribute_labels",
    "merge_labels",
]

DEFAULT_SOURCE = "unknown_service"
INSTANCE_ATTRIBUTES = ("service.instance.id", "k8s.pod.name", "host.name")
INSTANCE_LABEL = "instance"
SCOPE_NAME = "otel.scope.name"
SCOPE_VERSION = "otel.scope.version"
DEFAULT_KEPT = (
    "service.namespace",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
    SCOPE_NAME,
)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a batch of samples comes from: its source and instance ("" = none)."""

    source: str
    instance: str = ""


@dataclass(frozen=True, slots=True)
class ResourceRules:
    kept: tuple[str, ...] = DEFAULT_KEPT

    def origin(self, resource: Iterable[KeyValue]) -> tuple[Origin, Labels]:
        """The resource's origin and the labels it adds to each of its series."""
        attributes = {kv.key: text(kv.value) for kv in resource}
        source = sanitize_source_name(attributes.get("service.name", "")) or DEFAULT_SOURCE
        instance = next((attributes[k] for k in INSTANCE_ATTRIBUTES if attributes.get(k)), "")
        labels = [(INSTANCE_LABEL, instance)] if instance else []
        labels += [
            (sanitize_label_name(key), attributes[key])
            for key in self.kept
            if attributes.get(key) and key not in (SCOPE_NAME, SCOPE_VERSION)
        ]
        return Origin(source, instance), tuple(labels)

    def scope_labels(self, scope: InstrumentationScope) -> Labels:
        labels = []
        if SCOPE_NAME in self.kept and scope.name:
            labels.append(("otel_scope_name", scope.name))
        if SCOPE_VERSION in self.kept and scope.version:
            labels.append(("otel_scope_version", scope.version))
        return tuple(labels)


def attribute_labels(attributes: Iterable[KeyValue]) -> list[tuple[str, str]]:
    return [(sanitize_label_name(kv.key), text(kv.value)) for kv in attributes]


def merge_labels(point: Sequence[tuple[str, str]], added: Labels) -> list[tuple[str, str]]:
    """The point's labels plus the resource's and scope's; a clash renames the point's."""
    taken = {name for name, _ in added}
    merged = [(f"exported_{n}" if n in taken else n, v) for n, v in point]
    return merged + list(added)


def text(value: AnyValue) -> str:
    """An attribute value as label text: true/false, numbers, arrays and maps as JSON."""
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
