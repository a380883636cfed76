"""The send-threads section: does the bridge's second send thread help on one core?

The bridge splits a flush's send() calls over `--send-threads` threads
(bridge/sender.py). Pinned to the server cores (bench.pinning; one core by
default), it is measured as the fan-out section measures it
(bench.run.measure_server: a latency window, then a throughput window) with
1 and 2 send threads, `ROUNDS` times in turn so drift on a shared machine
shows as spread rather than as a difference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.processes import Server
from bench.pusher import Pusher
from bench.run import SOURCE, Results, Settings, measure_server

__all__ = ["ROUNDS", "THREADS", "measure_send_threads"]

THREADS = (1, 2)
ROUNDS = 2


async def measure_send_threads(settings: Settings, results: Results) -> None:
    print(
        f"send threads ({settings.freshness_clients:,} clients; {settings.plan.describe()}):",
        flush=True,
    )
    one_count = dataclasses.replace(
        settings, clients=[settings.freshness_clients], compressions=["none"]
    )
    collector = Server.module("collector", ["--listen", "127.0.0.1:0", "--log-level", "WARNING"])
    try:
        address = collector.addresses["grpc"]
        pusher = Pusher(address, SOURCE)
        await pusher.push(rate=100, seconds=0.05)
        for _ in range(ROUNDS):
            for threads in THREADS:
                scratch = Results(settings={}, machine={})
                print(f"  --send-threads {threads}:", flush=True)
                await measure_server(
                    "bridge",
                    one_count,
                    address,
                    pusher,
                    scratch,
                    extra=("--send-threads", str(threads)),
                )
                results.send_threads.append(row(threads, scratch.runs[0], settings))
    finally:
        collector.stop()


def row(threads: int, run: dict[str, Any], settings: Settings) -> dict[str, Any]:
    keep = ("clients", "connected", "deliveries_per_s", "p50_ms", "p99_ms", "server_cpu")
    return {
        "send_threads": threads,
        "cores": settings.plan.describe(),
        **{key: run[key] for key in keep},
        "load_cpu": run["load_cpu"],
        "latency_server_cpu": run["latency_server_cpu"],
    }
