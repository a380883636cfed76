"""Charts from a results dict: capacity.png and fanout.png are real PNGs; a missing
section is skipped with a message naming it, and the rest are still drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.charts import draw, fanout_ratios

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(server: str, clients: int, compression: str, rate: float) -> dict[str, Any]:
    return {
        "server": server,
        "clients": clients,
        "compression": compression,
        "deliveries_per_s": rate,
    }


RUNS = [
    run("bridge", 100, "none", 60_000),
    run("bridge", 100, "deflate", 50_000),
    run("bridge", 1000, "none", 200_000),
    run("ws", 100, "none", 30_000),
    run("ws", 100, "deflate", 3_000),
    run("ws", 1000, "none", 40_000),
    run("raw", 100, "none", 50_000),
    run("raw", 1000, "none", 60_000),
]


def capacity_point(clients: int, p99: float, passed: bool) -> dict[str, Any]:
    return {
        "clients": clients,
        "p99_ms": p99,
        "passed": passed,
        "bridge_cpu": clients / 10_000,
        "load_cpu": clients / 8_000,
    }


CAPACITY = {
    "cpus": 2,
    "scenarios": [
        {
            "label": "1 update/s, 1 channel",
            "clients": 4000,
            "capped": False,
            "points": [capacity_point(n, n / 50, n <= 4000) for n in (1000, 2000, 4000, 8000)],
        },
        {"label": "10 updates/s, 1 channel", "clients": 0, "capped": False, "points": []},
    ],
}


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


def test_both_charts_are_drawn_as_pngs(tmp_path: Path) -> None:
    messages = draw({"runs": RUNS, "capacity": CAPACITY}, tmp_path)
    assert messages == [f"wrote {tmp_path / 'capacity.png'}", f"wrote {tmp_path / 'fanout.png'}"]
    assert_png(tmp_path / "capacity.png")
    assert_png(tmp_path / "fanout.png")


def test_a_missing_section_is_skipped_with_a_message(tmp_path: Path) -> None:
    messages = draw({"runs": RUNS}, tmp_path)
    assert messages[0].startswith("capacity.png skipped: no capacity section")
    assert not (tmp_path / "capacity.png").exists()
    assert_png(tmp_path / "fanout.png")
    messages = draw({"capacity": CAPACITY}, tmp_path / "other")
    assert messages[1].startswith("fanout.png skipped: no bridge and baseline fan-out runs")
    assert_png(tmp_path / "other" / "capacity.png")


def test_ratios_are_bridge_over_baseline_and_a_one_offer_baseline_stands_for_both() -> None:
    ratios = fanout_ratios(RUNS)
    assert list(ratios) == ["raw", "ws"]
    assert [r for _, r in ratios["ws"]] == pytest.approx([2.0, 50_000 / 3_000, 5.0])
    assert [r for _, r in ratios["raw"]] == pytest.approx([1.2, 1.0, 200 / 60])
    assert [label for label, _ in ratios["raw"]] == ["100\nnone", "100\ndeflate", "1,000\nnone"]
