"""The latency budget section: where publish-to-receive time goes at normal load.

A fresh collector; the pusher at `--latency-rate` (10 updates/s) leaves each
update's time to the collector, which stamps it when the Push is applied.
Each server in `SERVERS` (the bridge first) that `--servers` names runs pinned like every server
under test (bench.pinning) with `--freshness-clients` clients, one
`--budget-seconds` latency window each. The clients that time updates give
the total (receive minus publish time) and the Push hop (the collector's
stamp minus publish time), exactly, per update; the bridge's /metrics,
read before and after its window, gives its hops (bench.freshness.BUDGET_HOPS).
The tables and goals are bench.freshness's.
"""

from __future__ import annotations

from typing import Any

from bench.freshness import BUDGET_HOPS, budget_goals, budget_rows
from bench.histograms import metrics_url, try_scrape, window_summary
from bench.processes import Server
from bench.pusher import Pusher
from bench.run import (
    CHANNEL,
    SOURCE,
    LoadProcess,
    Results,
    Settings,
    settle,
    start_server,
    wait_for_channel,
)

__all__ = ["SERVERS", "measure_budget"]

SERVERS = ("bridge", "raw", "picows", "ws")
TIMED = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
    "stamp_p50_ms",
    "stamp_p99_ms",
    "stamp_mean_ms",
    "after_stamp_p50_ms",
    "after_stamp_p99_ms",
    "server_cpu",
    "load_cpu",
)


async def measure_server(
    kind: str, settings: Settings, collector: str, pusher: Pusher
) -> dict[str, Any]:
    server = start_server(kind, collector, cores=settings.plan.server)
    try:
        url = server.addresses["url"]
        if kind == "bridge":
            await wait_for_channel(url, CHANNEL)
        load = await LoadProcess.start(
            url, CHANNEL, settings.freshness_clients, "none", settings.latency_clients
        )
        try:
            await settle(server.pid)
            before = await try_scrape(metrics_url(url)) if kind == "bridge" else None
            result = await load.window(
                "latency",
                pusher,
                settings.latency_rate,
                settings.budget_seconds,
                settings.warmup,
                server.pid,
            )
            after = await try_scrape(metrics_url(url)) if kind == "bridge" else None
        finally:
            await load.close()
    finally:
        server.stop()
    row: dict[str, Any] = {
        "server": kind,
        "connected": load.ready["clients"],
        "latency_samples": result["updates_timed"],
    }
    row.update({key: result.get(key) for key in TIMED})
    if kind == "bridge":
        row["hops"] = window_summary(before, after, {k: m for k, m, _ in BUDGET_HOPS})
    return row


async def measure_budget(settings: Settings, results: Results) -> None:
    print(
        f"latency budget ({settings.freshness_clients:,} clients, {settings.latency_rate:g} "
        f"updates/s, {settings.budget_seconds:g} s windows; {settings.plan.describe()}):",
        flush=True,
    )
    collector = Server.module("collector", ["--listen", "127.0.0.1:0", "--log-level", "WARNING"])
    budget: dict[str, Any] = {
        "clients": settings.freshness_clients,
        "rate": settings.latency_rate,
        "seconds": settings.budget_seconds,
        "latency_clients": settings.latency_clients,
        "cores": settings.plan.describe(),
        "baselines": [],
    }
    try:
        address = collector.addresses["grpc"]
        pusher = Pusher(address, SOURCE, stamp=False)
        await pusher.push(rate=100, seconds=0.05)
        for kind in (kind for kind in SERVERS if kind in settings.servers):
            try:
                row = await measure_server(kind, settings, address, pusher)
            except RuntimeError as exc:
                print(f"  {kind}: not measured ({exc})", flush=True)
                continue
            if kind == "bridge":
                budget["bridge"] = row
            else:
                budget["baselines"].append(row)
            print(
                f"  {kind:7} p50 {row['p50_ms'] or 0:6.1f} ms  p99 {row['p99_ms'] or 0:6.1f} ms"
                f"  ({row['latency_samples']:,} updates timed, server CPU "
                f"{row['server_cpu'] or 0:.0%})",
                flush=True,
            )
    finally:
        collector.stop()
    results.budget = budget
    for hop in budget_rows(budget):
        print(
            f"  {hop['hop'][:70]:70} p50 {_ms(hop['p50_ms'])} p99 {_ms(hop['p99_ms'])} "
            f"mean {_ms(hop['mean_ms'])}",
            flush=True,
        )
    for goal in budget_goals(budget):
        print(f"  {goal['goal']}: {goal['measured']} ({'ok' if goal['ok'] else 'NOT MET'})")


def _ms(value: float | None) -> str:
    return "     -" if value is None else f"{value:6.1f}"
