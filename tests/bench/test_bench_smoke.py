"""A tiny run of the benchmark, to show it works end to end (not how fast).

The pipeline section has its own real-process test (tests/bench/test_pipeline.py)
and its table a report test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO
from tests.support.timing import scaled

pytestmark = pytest.mark.node


def test_bench_smoke_run_writes_its_table_and_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "bench",
            "--clients", "20",
            "--servers", "bridge,ws,broadcast",
            "--compressions", "none",
            "--seconds", "0.5",
            "--latency-seconds", "0.5",
            "--sections", "fanout,memory",
            "--out", str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(240),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "latest.json").read_text())
    runs = {run["server"]: run for run in data["runs"]}
    assert set(runs) == {"bridge", "ws", "broadcast"}
    for run in runs.values():
        assert run["connected"] == 20
        assert run["deliveries_per_s"] > 0
        assert run["latency_samples"] > 0
        assert run["p99_ms"] is not None
    assert [row["compression"] for row in data["rss"]] == ["none", "deflate"]
    assert data["host_bytes"]["protobuf_updates"] > 0
    assert data["host_bytes"]["json_updates"] > 0
    assert data["pushed_bytes"]["protobuf_updates"] > 0
    assert data["pushed_bytes"]["json_updates"] > 0
    table = (tmp_path / "latest.md").read_text()
    assert "| 20 | none | bridge |" in table
    assert "x broadcast" in table
    assert "x ws" in table
    assert "Pushed service (c1/checkout: 32 series" in table
    assert [(row["clients"], row["compression"]) for row in data["goal"]] == [(20, "none")]
    assert "fan-out faster than Node's `ws`" in table
