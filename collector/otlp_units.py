"""OTLP units to the UCUM units the collector's series carry. Pure.

Rules (the OTel Collector's Prometheus exporter reads units the same way):
- A unit is UCUM as OpenTelemetry's semantic conventions write it ("By",
  "s", "ms", "1", "%", "By/s") and passes unchanged.
- Curly-brace annotations are not units and are dropped: "{request}" -> "1"
  (a count), "{packet}/s" -> "1/s", "By{compressed}" -> "By".
- A few common non-UCUM spellings are mapped (WORDS: "bytes" -> "By",
  "seconds" -> "s", "milliseconds" -> "ms", "percent" -> "%", ...).
- At most 64 characters are kept.
"""

from __future__ import annotations

import re

from collector.validation import MAX_UNIT

__all__ = ["WORDS", "ucum"]

WORDS = {
    "byte": "By",
    "bytes": "By",
    "second": "s",
    "seconds": "s",
    "millisecond": "ms",
    "milliseconds": "ms",
    "microsecond": "us",
    "microseconds": "us",
    "nanosecond": "ns",
    "nanoseconds": "ns",
    "minute": "min",
    "minutes": "min",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
    "percent": "%",
}

ANNOTATION = re.compile(r"\{[^}]*\}")


def ucum(unit: str) -> str:
    if not unit:
        return ""
    parts = []
    for part in unit.strip().split("/"):
        bare = ANNOTATION.sub("", part).strip()
        parts.append(WORDS.get(bare.lower(), bare) if bare else "1")
    return "/".join(parts)[:MAX_UNIT]
