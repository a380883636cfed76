"""bench.report: bytes per update against JSON, for the host and a pushed service."""

from __future__ import annotations

from typing import Any

from bench.report import bytes_ratio, render, verdicts


def _bytes(channel: str, protobuf: float, json_: float) -> dict[str, Any]:
    return {
        "channel": channel,
        "protobuf_bytes_per_update": protobuf,
        "protobuf_updates": 50,
        "json_bytes_per_update": json_,
        "json_updates": 50,
    }


def _data(**extra: Any) -> dict[str, Any]:
    return {
        "machine": {
            "started": "then",
            "cpus": 2,
            "python": "3.11",
            "platform": "linux",
            "load_average": [0.5],
        },
        "settings": {
            "throughput_seconds": 2.0,
            "latency_seconds": 5.0,
            "latency_rate": 10.0,
            "offered": 250_000,
            "max_push_rate": 2000,
        },
        "runs": [],
        "rss": [],
        "host_bytes": _bytes("c1/vm", 141, 1538),
        **extra,
    }


def test_the_ratio_is_protobuf_over_json_bytes_and_absent_without_json_updates() -> None:
    assert bytes_ratio(_bytes("c1/x", 166, 1985)) == 166 / 1985
    assert bytes_ratio(_bytes("c1/x", 166, 0)) is None


def test_the_pushed_service_is_reported_next_to_the_host_with_its_ratio() -> None:
    pushed = {**_bytes("c1/checkout", 166, 1985), "series": 32, "push_rate": 10.0}
    text = render(_data(pushed_bytes=pushed))
    assert "naive JSON 1538 (50 updates): 9.2% of JSON." in text
    assert "Pushed service (c1/checkout: 32 series" in text
    assert "10.0 batches/s" in text
    assert "protobuf 166 (50 updates), naive JSON 1985 (50 updates): 8.4% of JSON." in text


def test_results_without_a_pushed_service_render_and_only_the_host_is_a_floor() -> None:
    data = _data(pushed_bytes={})
    assert "Pushed service" not in render(data)
    assert "Pushed service" not in render({k: v for k, v in data.items() if k != "pushed_bytes"})
    assert [v["floor"] for v in verdicts(data)] == ["protobuf host update <= 10 % of JSON bytes"]


def test_each_pipeline_row_shows_events_and_the_values_they_carried() -> None:
    row = {
        "subscribers": 10,
        "pushers": 4,
        "series": 10,
        "events_per_s": 2502.4,
        "gaps": 0,
        "resyncs": 0,
        "collector_cpu_us_per_event": 365.2,
        "bridge_cpu_us_per_event": 180.0,
        "collector_cpu_share": 0.91,
    }
    text = render(_data(pipeline=[row, {**row, "batches_per_message": 32}]))
    assert "| 10 | 4 x 10 | Push | 2,502 | 25,024 | 0 | 0 | 365 us | 180 us | 91% |" in text
    assert "| 10 | 4 x 10 | PushBatches x32 | 2,502 |" in text
    assert "Pipeline:" not in render(_data())
