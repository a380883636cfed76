"""The fan-out benchmark: the bridge against baselines, same clients, same run.

For each server (bridge; broadcast, naive, raw from bench.baselines; ws, the
Node `ws` server of bench/node/ws_baseline.mjs; picows, bench.picows_baseline), each
client count and each client kind (offering no compression, or offering
permessage-deflate as browsers do), one load process (bench.load) opens the
connections, then:
  1. latency: the pusher drives the collector at `--latency-rate` updates/s;
     publish-to-receive latency p50/p99 and wire bytes per update;
  2. throughput: the pusher offers far more than any server delivers
     (`--offered` deliveries/s, split over the clients); deliveries/s is what
     the clients received in the window (updates and resync snapshots).
Only the server under test runs next to the collector, pusher and load.
Then: bridge RSS per idle connection (fresh bridge, with and without
permessage-deflate negotiated) and bytes per update, bridge protobuf vs naive
JSON over the same collector updates, of the host metrics and of a pushed
service (bench.pusher.ServicePusher, 10 batches/s). Last, the pipeline
(bench.pipeline): events/s from pushers through a fresh collector and bridge
to a WebSocket client, in order, and the collector's CPU per event with 1 and
10 Subscribe streams.

Every server under test runs on the same cores (`--server-cores`, default
core 0; bench.pinning), the collector, pusher and load client on the others.
Sections of issue 13 (bench.overload, bench.budget, bench.send_threads):
overload (the pusher flat out, with and without --max-staleness), the latency
budget hop by hop at 10 updates/s, and the bridge's send threads on one core.
`--sections` runs some sections only; their results replace those sections'
in an existing latest.json, the others are kept. The capacity section
(bench.capacity, issue 12) finds the most clients one bridge serves at p99
<= 100 ms in three scenarios. Last, bench.charts draws capacity.png and
fanout.png next to latest.md.

The table (with ratios to the baselines measured in the same run) is printed
and written to `--out`/latest.md and latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench.capacity import CapacitySettings, measure_capacity
from bench.charts import draw
from bench.pinning import CorePlan, Pinned, available_cores, pin
from bench.pipeline import BATCHES_PER_MESSAGE, measure_pipeline
from bench.processes import REPO, Server
from bench.pusher import Pusher, ServicePusher
from bench.report import bytes_summary, goal, render, verdicts
from bridge.client import BridgeClient, CatalogReceived
from metrics_bridge.v1 import collector_pb2, collector_pb2_grpc, metrics_pb2

COLLECTOR_NAME = "c1"
SOURCE = "load"
SERVICE_SOURCE = "checkout"
CHANNEL = f"{COLLECTOR_NAME}/{SOURCE}"
SERVERS = ("bridge", "ws", "picows", "broadcast", "naive", "raw")
# Decline permessage-deflate whatever clients offer: measured once, with the first kind.
NEVER_COMPRESS = ("raw", "picows")
# Each section and the keys of latest.json it fills.
SECTIONS: dict[str, tuple[str, ...]] = {
    "fanout": ("runs",),
    "memory": ("rss", "host_bytes", "pushed_bytes"),
    "pipeline": ("pipeline",),
    "overload": ("overload",),
    "budget": ("budget",),
    "threads": ("send_threads",),
    "capacity": ("capacity",),
}


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def settle(pid: int, within: float = 30.0) -> None:
    """Wait until the server is idle (a backlog from the last run is worked off)."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + within
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        busy = await asyncio.to_thread(process.cpu_percent, 0.25)
        quiet = quiet + 1 if busy < 15 else 0


@dataclass
class Settings:
    clients: list[int]
    servers: list[str]
    compressions: list[str]
    throughput_seconds: float
    latency_seconds: float
    latency_rate: float
    offered: float
    max_push_rate: float
    rss_clients: int
    latency_clients: int
    out: Path
    warmup: float = 0.5
    pipeline_subscribers: list[int] = field(default_factory=lambda: [1, 10])
    pipeline_seconds: float = 5.0
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    server_cores: list[int] = field(default_factory=list)
    rest_cores: list[int] = field(default_factory=list)
    freshness_clients: int = 1000
    overload_seconds: float = 15.0
    overload_warmup: float = 5.0
    overload_bridge_args: list[str] = field(default_factory=list)
    budget_seconds: float = 20.0
    capacity_budget: float = 360.0

    @property
    def plan(self) -> CorePlan:
        return CorePlan(frozenset(self.server_cores), frozenset(self.rest_cores))


@dataclass
class Results:
    settings: dict[str, Any]
    machine: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    rss: list[dict[str, Any]] = field(default_factory=list)
    host_bytes: dict[str, Any] = field(default_factory=dict)
    pushed_bytes: dict[str, Any] = field(default_factory=dict)
    pipeline: list[dict[str, Any]] = field(default_factory=list)
    overload: list[dict[str, Any]] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    send_threads: list[dict[str, Any]] = field(default_factory=list)
    section_times: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity: dict[str, Any] = field(default_factory=dict)


class LoadProcess:
    """One bench.load process, driven line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc = proc
        self.ready = ready

    @classmethod
    async def start(
        cls, url: str, channel: str, clients: int, compression: str, latency_clients: int
    ) -> LoadProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            "--url",
            url,
            "--channel",
            channel,
            "--clients",
            str(clients),
            "--compression",
            compression,
            "--latency-clients",
            str(latency_clients),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        load = cls(proc, {})
        load.ready = await load.read(within=180)
        if load.ready.get("event") != "ready":
            raise RuntimeError(f"load process failed: {load.ready}")
        return load

    async def read(self, within: float = 60) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), within)
        if not line:
            raise RuntimeError("load process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def window(
        self,
        mode: str,
        pusher: Pusher | None,
        rate: float,
        seconds: float,
        warmup: float,
        server_pid: int | None = None,
    ) -> dict[str, Any]:
        """Push at `rate`, measure the `seconds` after `warmup`: the load's result plus
        the push rate achieved and the CPU share (of one core) of server and load."""
        opens = time.time() + warmup
        closes = opens + seconds
        await self.command(f"window {mode} {opens} {closes}")
        push = asyncio.create_task(pusher.push(rate, warmup + seconds)) if pusher else None
        watched = {"load_cpu": psutil.Process(self.proc.pid)}
        if server_pid is not None:
            watched["server_cpu"] = psutil.Process(server_pid)
        await asyncio.sleep(max(0.0, opens - time.time()))
        before = {name: cpu_seconds(p) for name, p in watched.items()}
        await asyncio.sleep(max(0.0, closes - time.time()))
        used = {name: (cpu_seconds(p) - before[name]) / seconds for name, p in watched.items()}
        await asyncio.sleep(0.2)
        await self.command("result")
        result = await self.read()
        result["push_rate"] = await push if push else 0.0
        result.update(used)
        return result

    async def drain(self, quiet: float = 0.5, within: float = 30) -> None:
        """Wait until deliveries stop (a backlog left by an overloaded server is gone)."""
        deadline = time.monotonic() + within
        last = -1
        while time.monotonic() < deadline:
            await self.command("stats")
            total = (await self.read())["deliveries"]
            if total == last:
                return
            last = total
            await asyncio.sleep(quiet)

    async def close(self) -> None:
        try:
            await self.command("exit")
            await asyncio.wait_for(self.proc.wait(), 30)
        except (TimeoutError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()


def start_server(
    kind: str,
    collector: str,
    compression: str | None = None,
    cores: frozenset[int] = frozenset(),
    extra: tuple[str, ...] = (),
) -> Server:
    """A server following `collector`, pinned to `cores` once it serves; the bridge with
    its default compression unless given, and `extra` options."""
    server = _start_server(kind, collector, compression, extra)
    pin(server.pid, cores)
    return server


def _start_server(
    kind: str, collector: str, compression: str | None, extra: tuple[str, ...]
) -> Server:
    if kind == "bridge":
        chosen = ["--compression", compression] if compression else []
        return Server.module(
            "bridge",
            [
                "--listen", "127.0.0.1:0",
                "--collector", f"{COLLECTOR_NAME}={collector}",
                *chosen,
                "--max-connections", "20000",
                "--log-level", "WARNING",
                *extra,
            ],
        )  # fmt: skip
    follow = ["--collector", collector, "--name", COLLECTOR_NAME, "--wait-source", SOURCE]
    if kind == "ws":
        return Server.node("ws_baseline.mjs", follow)
    if kind == "picows":
        return Server.module("bench.picows_baseline", follow)
    return Server.module("bench.baselines", ["--kind", kind, *follow])


async def wait_for_channel(url: str, channel: str, within: float = 30) -> None:
    """The bridge lists the channel in its catalog (its upstream is live)."""
    async with asyncio.timeout(within), BridgeClient(url) as client:
        async for event in client.events():
            if isinstance(event, CatalogReceived) and any(
                c.channel == channel for c in event.channels
            ):
                return


def host_source(collector: str) -> str:
    with grpc.insecure_channel(collector) as channel:
        stub = collector_pb2_grpc.MetricsCollectorStub(channel)
        response = stub.ListSources(collector_pb2.ListSourcesRequest(), timeout=10)
    for source in response.sources:
        if source.kind == metrics_pb2.SOURCE_KIND_HOST:
            return str(source.name)
    raise RuntimeError("the collector has no host source")


async def measure_server(
    kind: str,
    settings: Settings,
    collector: str,
    pusher: Pusher,
    results: Results,
    extra: tuple[str, ...] = (),
) -> None:
    server = start_server(kind, collector, cores=settings.plan.server, extra=extra)
    try:
        url = server.addresses["url"]
        if kind == "bridge":
            await wait_for_channel(url, CHANNEL)
        for clients in settings.clients:
            for compression in settings.compressions:
                if kind in NEVER_COMPRESS and compression != settings.compressions[0]:
                    continue
                load = await LoadProcess.start(
                    url, CHANNEL, clients, compression, settings.latency_clients
                )
                try:
                    await settle(server.pid)
                    latency = await load.window(
                        "latency",
                        pusher,
                        settings.latency_rate,
                        settings.latency_seconds,
                        settings.warmup,
                        server.pid,
                    )
                    rate = min(settings.max_push_rate, max(10.0, settings.offered / clients))
                    count = await load.window(
                        "count",
                        pusher,
                        rate,
                        settings.throughput_seconds,
                        settings.warmup,
                        server.pid,
                    )
                    await load.drain()
                finally:
                    await load.close()
                await settle(server.pid)
                run = {
                    "server": kind,
                    "clients": clients,
                    "compression": compression,
                    "connected": load.ready["clients"],
                    "failed": load.ready["failed"],
                    "deflate_negotiated": load.ready["deflate"],
                    "connect_s": load.ready["connect_s"],
                    "deliveries_per_s": count["deliveries_per_s"],
                    "push_rate": count["push_rate"],
                    "server_cpu": count["server_cpu"],
                    "load_cpu": count["load_cpu"],
                    "latency_server_cpu": latency["server_cpu"],
                    "latency_load_cpu": latency["load_cpu"],
                    "open_after": count["open"],
                    "p50_ms": latency.get("p50_ms"),
                    "p99_ms": latency.get("p99_ms"),
                    "latency_samples": latency["updates_timed"],
                    "bytes_per_update": latency["bytes_per_update"],
                }
                results.runs.append(run)
                print(
                    f"  {kind:9} {clients:5} clients {compression:7} "
                    f"{run['deliveries_per_s']:>10,.0f} deliveries/s  "
                    f"p50 {run['p50_ms'] or 0:6.1f} ms  p99 {run['p99_ms'] or 0:6.1f} ms  "
                    f"cpu server {run['server_cpu']:.0%} load {run['load_cpu']:.0%} "
                    f"({run['connected']} connected, {run['deflate_negotiated']} deflate)",
                    flush=True,
                )
    finally:
        server.stop()


async def measure_rss(settings: Settings, collector: str, results: Results) -> None:
    for compression in ("none", "deflate"):
        server = start_server("bridge", collector, compression, settings.plan.server)
        try:
            url = server.addresses["url"]
            await wait_for_channel(url, CHANNEL)
            process = psutil.Process(server.pid)
            await asyncio.sleep(0.5)
            before = process.memory_info().rss
            load = await LoadProcess.start(url, CHANNEL, settings.rss_clients, compression, 0)
            await asyncio.sleep(1.0)
            after = process.memory_info().rss
            await load.close()
        finally:
            server.stop()
        row = {
            "compression": compression,
            "clients": load.ready["clients"],
            "deflate_negotiated": load.ready["deflate"],
            "rss_before": before,
            "rss_after": after,
            "bytes_per_connection": (after - before) / max(1, load.ready["clients"]),
        }
        results.rss.append(row)
        print(
            f"  bridge RSS, {compression:7}: {row['bytes_per_connection'] / 1024:.1f} KiB per idle"
            f" connection ({row['clients']} connections, {row['deflate_negotiated']} deflate)",
            flush=True,
        )


async def compare_bytes(
    settings: Settings, collector: str, channel: str, pusher: Pusher | None, rate: float
) -> dict[str, Any]:
    """Bridge protobuf vs naive JSON bytes per update of `channel`, one client each,
    over the same collector updates (driven by `pusher` at `rate`, if given)."""
    bridge = start_server("bridge", collector, cores=settings.plan.server)
    naive = start_server("naive", collector, cores=settings.plan.server)
    try:
        await wait_for_channel(bridge.addresses["url"], channel)
        loads = [
            await LoadProcess.start(server.addresses["url"], channel, 1, "none", 1)
            for server in (bridge, naive)
        ]
        seconds = max(2.0, settings.latency_seconds)
        warmup = settings.warmup if pusher else 0
        push = asyncio.create_task(pusher.push(rate, warmup + seconds + 0.2)) if pusher else None
        outcomes = await asyncio.gather(
            *(load.window("bytes", None, 0, seconds, warmup) for load in loads)
        )
        pushed = await push if push else 0.0
        for load in loads:
            await load.close()
    finally:
        bridge.stop()
        naive.stop()
    protobuf, json_ = outcomes
    row = {
        "channel": channel,
        "protobuf_bytes_per_update": protobuf["bytes_per_update"],
        "protobuf_updates": protobuf["updates_timed"],
        "json_bytes_per_update": json_["bytes_per_update"],
        "json_updates": json_["updates_timed"],
    }
    if pusher:
        row["push_rate"] = pushed
    return row


async def measure_host_bytes(settings: Settings, collector: str, results: Results) -> None:
    """Bridge protobuf vs naive JSON bytes for the same host-metrics updates."""
    host_channel = f"{COLLECTOR_NAME}/{host_source(collector)}"
    results.host_bytes = await compare_bytes(settings, collector, host_channel, None, 0)
    print(f"  host update bytes: {bytes_summary(results.host_bytes)}", flush=True)


async def measure_pushed_bytes(settings: Settings, collector: str, results: Results) -> None:
    """The same for a pushed service (bench.pusher.ServicePusher) at 10 batches/s."""
    pusher = ServicePusher(collector, SERVICE_SOURCE)
    await pusher.push(rate=10, seconds=0.3)
    channel = f"{COLLECTOR_NAME}/{SERVICE_SOURCE}"
    row = await compare_bytes(settings, collector, channel, pusher, 10.0)
    results.pushed_bytes = {**row, "series": len(pusher.series)}
    print(f"  pushed service update bytes: {bytes_summary(results.pushed_bytes)}", flush=True)


async def run(settings: Settings) -> Results:
    results = Results(
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
    )
    chosen = settings.sections
    print(f"cores: {settings.plan.describe()}", flush=True)
    with Pinned(settings.plan.rest):
        if "fanout" in chosen or "memory" in chosen:
            await measure_fanout_and_memory(settings, results)
        # These modules import this one (LoadProcess, start_server), hence imported here.
        from bench.budget import measure_budget
        from bench.overload import measure_overload
        from bench.send_threads import measure_send_threads

        # Overload last: what it leaves behind (1,000 flooded sockets) was seen to slow
        # the next bridge for tens of seconds.
        for name, measure in (
            ("budget", measure_budget),
            ("threads", measure_send_threads),
            ("capacity", measure_capacity_section),
            ("overload", measure_overload),
        ):
            if name in chosen:
                began, load = time.monotonic(), os.getloadavg()[0]
                await measure(settings, results)
                timed(results, name, began, load)
    if "pipeline" not in chosen:
        return results
    began, load = time.monotonic(), os.getloadavg()[0]
    if settings.pipeline_subscribers:
        print("pipeline (Push -> collector -> bridge -> WebSocket client):", flush=True)
    # First the same path with one batch per Push message: the baseline in this run.
    counts = settings.pipeline_subscribers
    for subscribers, per_message in [(n, 1) for n in counts[:1]] + [
        (n, BATCHES_PER_MESSAGE) for n in counts
    ]:
        result = await measure_pipeline(
            subscribers, seconds=settings.pipeline_seconds, per_message=per_message
        )
        row = asdict(result)
        results.pipeline.append(row)
        print(
            f"  {subscribers} subscriber(s), {per_message} batch(es) per message: "
            f"{row['events_per_s']:,.0f} events/s in order "
            f"({row['gaps']} gaps, {row['resyncs']} resyncs), collector "
            f"{row['collector_cpu_us_per_event']:.0f} us CPU per event",
            flush=True,
        )
    timed(results, "pipeline", began, load)
    return results


async def measure_capacity_section(settings: Settings, results: Results) -> None:
    """bench.capacity: the most clients one bridge serves at p99 <= 100 ms."""
    print("capacity (clients per bridge at p99 <= 100 ms):", flush=True)
    results.capacity = await measure_capacity(
        CapacitySettings(
            budget_s=settings.capacity_budget,
            server_cores=settings.server_cores,
            rest_cores=settings.rest_cores,
        )
    )


def timed(results: Results, section: str, began: float, load: float | None = None) -> None:
    """Record and print how long `section` took, and the load average before and after it."""
    seconds = time.monotonic() - began
    results.section_times[section] = {
        "seconds": seconds,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_before": load,
        "load_average": os.getloadavg()[0],
    }
    print(f"  ({section}: {seconds:.0f} s)", flush=True)


async def measure_fanout_and_memory(settings: Settings, results: Results) -> None:
    """The fan-out rows, then memory and bytes, over one collector."""
    interval = max(0.25, settings.latency_seconds / 8)
    collector = Server.module(
        "collector",
        ["--listen", "127.0.0.1:0", "--interval", str(interval), "--log-level", "WARNING"],
    )
    try:
        address = collector.addresses["grpc"]
        pusher = Pusher(address, SOURCE)
        await pusher.push(rate=100, seconds=0.05)
        if "fanout" in settings.sections:
            began, load = time.monotonic(), os.getloadavg()[0]
            for kind in settings.servers:
                print(f"{kind}:", flush=True)
                await measure_server(kind, settings, address, pusher, results)
            timed(results, "fanout", began, load)
        if "memory" in settings.sections:
            began, load = time.monotonic(), os.getloadavg()[0]
            print("memory and bytes:", flush=True)
            await measure_rss(settings, address, results)
            await measure_host_bytes(settings, address, results)
            await measure_pushed_bytes(settings, address, results)
            timed(results, "memory", began, load)
    finally:
        collector.stop()


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--clients", default="100,1000,5000", help="client counts, comma-separated")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"servers to measure, of {','.join(SERVERS)}"
    )
    parser.add_argument("--compressions", default="none,deflate", help="what clients offer")
    parser.add_argument("--seconds", type=float, default=2.0, help="each throughput window")
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=5.0,
        help="each latency window; at 10 updates/s a longer window keeps p99 from resting "
        "on one or two updates",
    )
    parser.add_argument("--latency-rate", type=float, default=10.0, help="updates/s for latency")
    parser.add_argument(
        "--offered", type=float, default=250_000, help="deliveries/s offered for throughput"
    )
    parser.add_argument("--max-push-rate", type=float, default=2000.0, help="updates/s cap")
    parser.add_argument("--rss-clients", type=int, default=0, help="default: the largest count")
    parser.add_argument("--latency-clients", type=int, default=100, help="clients that decode")
    parser.add_argument(
        "--pipeline-subscribers",
        default="1,10",
        help="collector subscribers for the pipeline section, comma-separated; '' skips it",
    )
    parser.add_argument(
        "--pipeline-seconds", type=float, default=5.0, help="each pipeline push window"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"sections to run, of {','.join(SECTIONS)}; a part of them replaces only its "
        "own results in an existing latest.json",
    )
    parser.add_argument(
        "--server-cores",
        default="0",
        help="cores every server under test is pinned to (the collector, pusher and load "
        "client get the others); '' pins nothing",
    )
    parser.add_argument(
        "--freshness-clients",
        type=int,
        default=1000,
        help="clients in the overload, budget and threads sections",
    )
    parser.add_argument("--overload-seconds", type=float, default=15.0, help="each overload window")
    parser.add_argument(
        "--overload-warmup",
        type=float,
        default=5.0,
        help="seconds of overload before its window opens (queues fill up)",
    )
    parser.add_argument(
        "--overload-bridge-args",
        default="",
        help="more bridge options in the overload section, e.g. '--send-buffer-bytes 16384'",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=20.0,
        help="each latency budget window (at --latency-rate)",
    )
    parser.add_argument(
        "--capacity-budget",
        type=float,
        default=360.0,
        help="seconds for the capacity sweep, all scenarios (python -m bench.capacity --help)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    clients = [int(n) for n in args.clients.split(",")]
    servers = args.servers.split(",")
    unknown = set(servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {sorted(unknown)}")
    sections = [name for name in args.sections.split(",") if name]
    if set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {sorted(set(sections) - set(SECTIONS))}")
    try:
        plan = CorePlan.parse(args.server_cores, available_cores())
    except ValueError as exc:
        parser.error(f"--server-cores: {exc}")
    return Settings(
        clients=clients,
        servers=servers,
        compressions=args.compressions.split(","),
        throughput_seconds=args.seconds,
        latency_seconds=args.latency_seconds,
        latency_rate=args.latency_rate,
        offered=args.offered,
        max_push_rate=args.max_push_rate,
        rss_clients=args.rss_clients or max(clients),
        latency_clients=args.latency_clients,
        out=args.out,
        pipeline_subscribers=[int(n) for n in args.pipeline_subscribers.split(",") if n],
        pipeline_seconds=args.pipeline_seconds,
        sections=sections,
        server_cores=sorted(plan.server),
        rest_cores=sorted(plan.rest),
        freshness_clients=args.freshness_clients,
        overload_seconds=args.overload_seconds,
        overload_warmup=args.overload_warmup,
        overload_bridge_args=shlex.split(args.overload_bridge_args),
        budget_seconds=args.budget_seconds,
        capacity_budget=args.capacity_budget,
    )


def kept_sections(data: dict[str, Any], previous: Path, ran: list[str]) -> dict[str, Any]:
    """`data` with the results of the sections not run taken from `previous` (a latest.json),
    when some were not run and it exists; their times say when they were measured. Kept
    fan-out rows keep the settings and machine that the table's header describes."""
    skipped = [name for name in SECTIONS if name not in ran]
    if not skipped or not previous.exists():
        return data
    old = json.loads(previous.read_text())
    merged = dict(data)
    if "fanout" in skipped and old.get("runs"):
        merged["settings"], merged["machine"] = old["settings"], old["machine"]
    merged["section_times"] = {
        **{k: v for k, v in old.get("section_times", {}).items() if k in skipped},
        **data["section_times"],
    }
    for name in skipped:
        for key in SECTIONS[name]:
            if key in old:
                merged[key] = old[key]
    return merged


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    began = time.monotonic()
    results = asyncio.run(run(settings))
    results.machine["load_average_at_end"] = os.getloadavg()
    data = asdict(results)
    data["elapsed_s"] = time.monotonic() - began
    data = kept_sections(data, settings.out / "latest.json", settings.sections)
    data["verdicts"] = verdicts(data)
    data["goal"] = goal(data)
    text = render(data)
    print()
    print(text)
    settings.out.mkdir(parents=True, exist_ok=True)
    (settings.out / "latest.md").write_text(text)
    (settings.out / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {settings.out / 'latest.md'} and latest.json")
    for message in draw(data, settings.out):
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
