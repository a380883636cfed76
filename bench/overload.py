"""The overload section: the pusher flat out, 1,000 clients, with and without a staleness bound.

For each bound in `BOUNDS` (0 first: off, the behaviour before issue 13), a
fresh collector and bridge both run with `--max-staleness BOUND`, the bridge
pinned like every server under test (bench.pinning). The pusher streams
batches through one Push call as fast as the collector takes them; after
`--overload-warmup` seconds (the queues fill up) two load processes count
deliveries for `--overload-seconds`: one holds all clients but
`TIMING_CLIENTS`, the other those, which time every update and resync
snapshot they receive (receive time minus publish time, split at the
collector's stamp into the Push hop and the rest). Bridge and
collector RSS are read before the overload (idle) and sampled through the
window, the collector's CPU too; the bridge's /metrics is read at the
window's start and end: hop histograms over the window, drops by stage and
reason since the bridge started, and the age gauges at the end.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil

from bench.freshness import BUDGET_HOPS
from bench.histograms import labelled, metrics_url, try_scrape, window_summary
from bench.processes import Server
from bench.pusher import Pusher
from bench.run import (
    CHANNEL,
    SOURCE,
    LoadProcess,
    Results,
    Settings,
    cpu_seconds,
    settle,
    start_server,
    wait_for_channel,
)

__all__ = ["BOUNDS", "measure_overload"]

BOUNDS = (0.0, 1.0)
FLAT_OUT = 1e9  # updates/s: the pusher never waits, gRPC flow control paces it
SAMPLE_EVERY = 0.5
# Clients that time what they receive, in a load process of their own: light enough to
# read as soon as data arrives, so their figures are the servers' and not a backlog of the
# process that counts the other clients (which falls behind on the shared core).
TIMING_CLIENTS = 20
STAGE_REASON = ("stage", "reason")
HOPS = {key: metric for key, metric, _ in BUDGET_HOPS}


class Sampler:
    """RSS of some processes every SAMPLE_EVERY seconds: the first, last and largest seen."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def sample(self) -> None:
        for name, process in self.processes.items():
            rss = process.memory_info().rss
            self.first.setdefault(name, rss)
            self.last[name] = rss
            self.most[name] = max(self.most.get(name, 0), rss)

    async def run(self, until: float) -> None:
        while time.time() < until:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY)
        self.sample()


async def measure_bound(bound: float, settings: Settings) -> dict[str, Any]:
    staleness = ("--max-staleness", f"{bound:g}")
    collector = Server.module(
        "collector", ["--listen", "127.0.0.1:0", "--log-level", "WARNING", *staleness]
    )
    try:
        address = collector.addresses["grpc"]
        pusher = Pusher(address, SOURCE, stamp=False)
        await pusher.push(rate=100, seconds=0.05)
        extra = (*staleness, *settings.overload_bridge_args)
        bridge = start_server("bridge", address, cores=settings.plan.server, extra=extra)
        try:
            return await measure_window(bound, settings, pusher, bridge, collector)
        finally:
            bridge.stop()
    finally:
        collector.stop()


async def measure_window(
    bound: float, settings: Settings, pusher: Pusher, bridge: Server, collector: Server
) -> dict[str, Any]:
    url = bridge.addresses["url"]
    await wait_for_channel(url, CHANNEL)
    timers = min(TIMING_CLIENTS, settings.freshness_clients // 2)
    load = await LoadProcess.start(url, CHANNEL, settings.freshness_clients - timers, "none", 0)
    timing: LoadProcess | None = None
    try:
        timing = await LoadProcess.start(url, CHANNEL, timers, "none", timers)
        await settle(bridge.pid)
        warmup, seconds = settings.overload_warmup, settings.overload_seconds
        opens = time.time() + warmup
        closes = opens + seconds
        inside = Sampler(
            {"bridge": psutil.Process(bridge.pid), "collector": psutil.Process(collector.pid)}
        )
        idle = {name: p.memory_info().rss for name, p in inside.processes.items()}
        windows = asyncio.gather(
            load.window("count", pusher, FLAT_OUT, seconds, warmup, bridge.pid),
            timing.window("latency", None, 0, seconds, warmup),
        )
        await asyncio.sleep(max(0.0, opens - time.time()))
        collector_cpu = cpu_seconds(inside.processes["collector"])
        scraping = asyncio.create_task(try_scrape(metrics_url(url)))
        await inside.run(closes)
        collector_cpu = (cpu_seconds(inside.processes["collector"]) - collector_cpu) / seconds
        after = await try_scrape(metrics_url(url))
        before = await scraping
        result, timed = await windows
    finally:
        if timing is not None:
            await timing.close()
        await load.close()
    connected = load.ready["clients"] + timing.ready["clients"]
    row: dict[str, Any] = {
        "max_staleness": bound,
        "clients": settings.freshness_clients,
        "connected": connected,
        "timing_clients": timing.ready["clients"],
        "warmup": warmup,
        "seconds": seconds,
        "cores": settings.plan.describe(),
        "bridge_args": " ".join(settings.overload_bridge_args),
        "push_rate": result["push_rate"],
        "offered_deliveries_per_s": result["push_rate"] * connected,
        "deliveries_per_s": result["deliveries_per_s"] + timed["deliveries_per_s"],
        "timing_deliveries_per_s": timed["deliveries_per_s"],
        "position_rate": timed.get("seq_advance", 0) / seconds / max(1, timing.ready["clients"]),
        "latency_samples": timed["updates_timed"],
        "resyncs_timed": timed.get("resyncs_timed", 0),
        "bridge_cpu": result["server_cpu"],
        "load_cpu": result["load_cpu"],
        "timing_load_cpu": timed["load_cpu"],
        "collector_cpu": collector_cpu,
        "open_after": result["open"] + timed["open"],
        "hops": window_summary(before, after, HOPS),
        "drops": labelled(after, "metrics_bridge_dropped_updates_total", STAGE_REASON),
        "stage_resyncs": labelled(after, "metrics_bridge_stage_resyncs_total", STAGE_REASON),
        "delivered_age_s": labelled(after, "metrics_bridge_channel_delivered_age_seconds"),
        "upstream_queued_age_s": labelled(after, "metrics_bridge_upstream_queued_age_seconds"),
        "client_queued_age_s": labelled(after, "metrics_bridge_channel_queued_age_seconds"),
        "metrics_scraped": [before is not None, after is not None],
    }
    for key in (
        "p50_ms",
        "p99_ms",
        "max_ms",
        "mean_ms",
        "stamp_p50_ms",
        "stamp_p99_ms",
        "after_stamp_p50_ms",
        "after_stamp_p99_ms",
    ):
        row[key] = timed.get(key)
    for name in ("bridge", "collector"):
        row[f"{name}_rss_idle"] = idle[name]
        row[f"{name}_rss_start"] = inside.first.get(name)
        row[f"{name}_rss_end"] = inside.last.get(name)
        row[f"{name}_rss_max"] = inside.most.get(name)
    return row


async def measure_overload(settings: Settings, results: Results) -> None:
    print(
        f"overload ({settings.freshness_clients:,} clients, pusher flat out; "
        f"{settings.plan.describe()}):",
        flush=True,
    )
    for bound in BOUNDS:
        row = await measure_bound(bound, settings)
        results.overload.append(row)
        drops = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(row["drops"].items())) or "none"
        print(
            f"  max-staleness {bound:g} s: offered {row['push_rate']:,.0f} events/s "
            f"({row['offered_deliveries_per_s']:,.0f} deliveries/s), delivered "
            f"{row['deliveries_per_s']:,.0f}/s (clients' positions advanced "
            f"{row['position_rate']:,.0f} events/s), p50 {row['p50_ms'] or 0:,.0f} ms p99 "
            f"{row['p99_ms'] or 0:,.0f} ms (Push hop p50 {row['stamp_p50_ms'] or 0:,.0f}, "
            f"collector stamp to client p99 {row['after_stamp_p99_ms'] or 0:,.0f} ms), "
            f"bridge RSS {(row['bridge_rss_start'] or 0) / 2**20:.0f} -> "
            f"{(row['bridge_rss_end'] or 0) / 2**20:.0f} MB, collector RSS "
            f"{(row['collector_rss_start'] or 0) / 2**20:.0f} -> "
            f"{(row['collector_rss_end'] or 0) / 2**20:.0f} MB, drops: {drops}",
            flush=True,
        )
