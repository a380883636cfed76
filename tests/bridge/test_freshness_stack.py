"""Freshness under overload with real processes (issue 13).

A collector flooded by a pusher flat out, a bridge with 200 clients of the
channel: the age of the data the clients receive (receive wall time minus the
update's `time_unix_ms`, which the collector stamps when it applies a push)
stays within --max-staleness plus a margin for this shared machine, because
every stage sends the latest state in place of what waited past the bound, and
the bridge's hand-off merges a channel's updates once it falls behind
(measured on the shared machine: p99 0.36-0.49 s with the bound, 1.6-3.7 s
without). With the
bound off (METRICS_BRIDGE_LONG_TESTS=1), the same flood leaves the clients
seconds behind: the test can tell the two apart. The timed clients run in a
process apart from the 192 that load the bridge, so that their ages are the
system's, not the lag of a process reading hundreds of connections; a failure
prints the bridge's hop delays (/metrics) and what the timed clients had
left unread, to tell where the time went.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from bench.histograms import labelled, metrics_url, scrape, window_summary
from tests.bridge.stack import Pusher, bridge, collector
from tests.support.processes import REPO
from tests.support.timing import scaled

CHANNEL = "c1/svc"
CLIENTS = 200
MEASURING = 8
WARMUP = 4.0
WINDOW = 5.0
BOUND = 1.0
FLOODS = 2
MARGIN = 0.5
"""Added to the bound: the hops no bound covers (Push to the collector's queue, the flush,
the kernel), each stage settling at the bound under a steady flood, and the client
process's own lag on a 2-core machine shared with other runs. Measured there: p99
1.1-2.0 s with the bound, 3.0-3.5 s with it off."""


class Flood:
    """`FLOODS` pusher processes flat out (tests/bridge/flood.py), counted on demand."""

    def __init__(self, address: str) -> None:
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.bridge.flood", address, "svc"],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(FLOODS)
        ]

    def pushed(self) -> int:
        total = 0
        for process in self.processes:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write("count\n")
            process.stdin.flush()
            total += json.loads(process.stdout.readline())["pushed"]
        return total

    def __enter__(self) -> Flood:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Clients:
    """A tests/bridge/freshness_clients.py process: `count` connections,
    the first `measuring` timed."""

    def __init__(self, url: str, count: int, measuring: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bridge.freshness_clients",
                url,
                CHANNEL,
                str(count),
                str(measuring),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _line(self) -> dict[str, object]:
        assert self.process.stdout is not None
        line: dict[str, object] = json.loads(self.process.stdout.readline() or "{}")
        return line

    def ready(self) -> None:
        ready = self._line()
        assert ready.get("event") == "ready", ready

    def measure(self, seconds: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"measure {seconds}\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        result = self._line()
        assert result.get("event") == "result", result
        return result

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class Run:
    ages_ms: list[float]
    deliveries_per_client_s: float
    pushed_per_s: float
    marked: dict[str, int]
    bridge_drops: dict[str, float]
    hops_p99_ms: dict[str, float | None]
    unread_bytes: int

    def quantile(self, q: int) -> float:
        return statistics.quantiles(self.ages_ms, n=100, method="inclusive")[q - 1]

    def describe(self) -> str:
        return (
            f"ages p50 {self.quantile(50):.0f} ms, p99 {self.quantile(99):.0f} ms, "
            f"max {self.ages_ms[-1]:.0f} ms over {len(self.ages_ms)} deliveries; "
            f"{self.deliveries_per_client_s:.0f} deliveries/s per client, "
            f"{self.pushed_per_s:.0f} pushes/s offered; marked {self.marked}; "
            f"bridge drops {self.bridge_drops}; the bridge's hops' p99 ms in the window "
            f"{self.hops_p99_ms}; {self.unread_bytes} bytes unread by the measuring clients "
            "at its end"
        )


HOPS = {hop: f"metrics_bridge_{hop}_delay_seconds" for hop in ("upstream", "handoff", "flush")}


def flooded(bound: float) -> Run:
    staleness = ("--max-staleness", str(bound))
    with collector("--interval", "60", *staleness) as source:
        grpc_address = source.addresses["grpc"]
        pusher = Pusher(grpc_address)
        pusher.push(0.0, series=20)
        pusher.close()
        with bridge(
            grpc_address, *staleness, "--ping-interval", "600", "--ping-timeout", "600"
        ) as server:
            url = server.addresses["url"]
            load = Clients(url, CLIENTS - MEASURING, 0)
            timed = Clients(url, MEASURING, MEASURING)
            try:
                load.ready()
                timed.ready()
                with Flood(grpc_address) as flood:
                    time.sleep(WARMUP)
                    before = scrape(metrics_url(url), timeout=scaled(20))
                    sent = flood.pushed()
                    load.measure(WINDOW)
                    timed.measure(WINDOW)
                    result = timed.result()
                    loaded = load.result()
                    pushed = (flood.pushed() - sent) / WINDOW
                    after = scrape(metrics_url(url), timeout=scaled(20))
                assert result["open"] + loaded["open"] == CLIENTS, "every client stays connected"
            finally:
                load.kill()
                timed.kill()
    names = {1: "stale", 2: "overflow"}
    return Run(
        ages_ms=result["ages_ms"],
        deliveries_per_client_s=result["deliveries"] / result["measuring"] / WINDOW,
        pushed_per_s=pushed,
        marked={names.get(int(k), k): v for k, v in result["marked"].items()},
        bridge_drops=labelled(after, "metrics_bridge_dropped_updates_total", ("stage", "reason")),
        hops_p99_ms={
            hop: None if w["p99_ms"] is None else round(w["p99_ms"])
            for hop, w in window_summary(before, after, HOPS).items()
        },
        unread_bytes=result["unread_bytes"],
    )


def test_under_a_flood_the_data_clients_get_stays_within_the_staleness_bound() -> None:
    run = flooded(BOUND)
    print(run.describe())
    assert len(run.ages_ms) > 100, run.describe()
    # A stage that dropped or merged shows the flood overloaded the bridge.
    assert run.bridge_drops, "a flood that drops nothing did not test the bound: " + run.describe()
    assert run.quantile(99) <= (BOUND + scaled(MARGIN)) * 1000, run.describe()


@pytest.mark.skipif(
    os.environ.get("METRICS_BRIDGE_LONG_TESTS") != "1",
    reason="the same flood with the bound off (METRICS_BRIDGE_LONG_TESTS=1)",
)
def test_with_the_bound_off_the_same_flood_leaves_clients_seconds_behind() -> None:
    run = flooded(0.0)
    print(run.describe())
    assert run.quantile(99) > (BOUND + scaled(MARGIN)) * 1000, run.describe()
