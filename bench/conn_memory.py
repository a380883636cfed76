"""Where an idle connection's memory goes: tracemalloc inside a bridge.

A bridge runs in this process (bridge.server.BridgeServer, the same code as
`python -m bridge`) with tracemalloc on; a bench.load process opens
`--clients` connections that subscribe to the collector's host channel and
then stay idle. The Python allocations that appeared meanwhile, grouped by the
line that made them and divided by the connection count, are printed
largest first, next to the RSS growth per connection (which also counts what
tracemalloc cannot see: kernel socket buffers are not RSS, but C buffers of
the event loop, OpenSSL and zlib are).

Run: `python -m bench.conn_memory --collector HOST:PORT [--clients N]
[--compression none|deflate]`, or with no --collector to start one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tracemalloc
from dataclasses import asdict, dataclass, field

import psutil

from bench.processes import Server
from bench.run import LoadProcess, host_source, wait_for_channel
from bridge.config import parse_config
from bridge.server import BridgeServer

__all__ = ["ConnectionMemory", "measure"]


@dataclass
class ConnectionMemory:
    clients: int
    compression: str
    rss_per_connection: float
    traced_per_connection: float
    top: list[tuple[str, float]] = field(default_factory=list)
    """(file:line, bytes per connection), largest first."""


async def measure(
    collector: str, clients: int, compression: str, top: int = 15
) -> ConnectionMemory:
    channel = f"c1/{host_source(collector)}"
    config = parse_config(
        ["--listen", "127.0.0.1:0", "--collector", f"c1={collector}", "--compression", compression,
         "--max-connections", str(clients + 100), "--log-level", "WARNING"],
        env={},
    )  # fmt: skip
    bridge = BridgeServer(config)
    await bridge.start()
    try:
        host, port = bridge.address
        url = f"ws://{host}:{port}/"
        await wait_for_channel(url, channel)
        process = psutil.Process()
        tracemalloc.start(1)
        gc.collect()
        before, rss_before = tracemalloc.take_snapshot(), process.memory_info().rss
        load = await LoadProcess.start(url, channel, clients, compression, 0)
        await asyncio.sleep(1.0)
        gc.collect()
        after, rss_after = tracemalloc.take_snapshot(), process.memory_info().rss
        count = int(load.ready["clients"])
        await load.close()
    finally:
        tracemalloc.stop()
        await bridge.stop()
    diff = after.compare_to(before, "lineno")
    lines = [
        (f"{s.traceback[0].filename.split('/')[-1]}:{s.traceback[0].lineno}", s.size_diff / count)
        for s in diff[:top]
    ]
    return ConnectionMemory(
        clients=count,
        compression=compression,
        rss_per_connection=(rss_after - rss_before) / count,
        traced_per_connection=sum(s.size_diff for s in diff) / count,
        top=lines,
    )


async def main_async(args: argparse.Namespace) -> int:
    server = None
    collector = args.collector
    if collector is None:
        server = Server.module("collector", ["--listen", "127.0.0.1:0", "--log-level", "WARNING"])
        collector = server.addresses["grpc"]
    try:
        for compression in args.compression.split(","):
            result = await measure(collector, args.clients, compression)
            print(json.dumps(asdict(result)), flush=True)
    finally:
        if server is not None:
            server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.conn_memory", description=__doc__)
    parser.add_argument("--collector", help="HOST:PORT; default: start one")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--compression", default="none,deflate")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
