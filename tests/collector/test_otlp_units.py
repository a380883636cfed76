"""OTLP units become UCUM as the OTel Collector's Prometheus exporter reads them."""

from __future__ import annotations

import pytest

from collector.otlp_units import ucum


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("By", "By"),
        ("s", "s"),
        ("ms", "ms"),
        ("1", "1"),
        ("%", "%"),
        ("By/s", "By/s"),
        ("{request}", "1"),
        ("{packet}/s", "1/s"),
        ("By{compressed}", "By"),
        ("bytes", "By"),
        ("seconds", "s"),
        ("milliseconds", "ms"),
        ("", ""),
    ],
)
def test_ucum(unit: str, expected: str) -> None:
    assert ucum(unit) == expected
