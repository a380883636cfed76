"""The capacity sweep: the most clients one bridge serves with p99 publish-to-receive <= 100 ms.

Three scenarios, each with a fresh collector and bridge: 1 update/s on 1
channel per client, 1 update/s on each of 10 channels (10 pushed sources,
each client subscribed to all 10, the pushers' phases spread over the
second), and 10 updates/s on 1 channel. The pushers run for the whole
scenario; load processes (bench.capacity_load, clients offering no
compression) grow or shrink their connections to each point's count, spread
over several loopback source addresses, then one window measures:
publish-to-receive latency (kernel receive timestamps), updates and resync
snapshots received, the bridge's CPU (share of one core) and RSS, the load
processes' and the collector's CPU, and the whole machine's. With
`server_cores` the bridge is pinned to those cores and everything else to the
rest (bench.pinning), as for the other servers under test.

Rules (Search, without sockets or clocks):
- A point passes when every client is connected and stays open, p99 <= 100 ms,
  and no client got a resync snapshot (the bridge skipped no update). A point
  that fails on latency alone gets a second window, which decides (a burst of
  other work on a shared machine should not end the search). A window that
  cannot tell (opened late, under 90 % of the updates arrived, or failed while
  other work took over a quarter of the bridge's core) is measured again; a
  point has at most 4 windows, and the last one is judged as it is.
- Counts double from `start` while points pass, up to `maximum`; after the
  first failure they bisect between the best pass and the lowest failure
  until the two are within `resolution` (and one `step`) of each other.
- A scenario ends when the search converges, passes at `maximum`, or its
  share of the time budget would be exceeded by one more point (as long as
  the longest so far). Scenarios run heaviest first (10 updates/s, then 10
  channels, then 1 channel at 1/s), each with an equal share of what is left,
  so the time the heavy ones leave goes to the one that reaches most clients.
- Clients per bridge core: the best passing count over the cores the bridge
  had (pinned: its cores; unpinned: the cores it used, at least one; one
  bridge process is one event loop, so a bridge that used less than its core
  was stopped by latency, not CPU, and a second process would need a core of
  its own). The CPU column shows how much of its core it used; the table says
  what limited the first failing point (the bridge's CPU, its fan-out time,
  the load side, or other work on the machine).

A section of `make bench`; alone, `make bench-capacity` (`python -m bench
--sections capacity`) replaces only this section of bench/results/latest.json
and latest.md. `python -m bench.capacity` runs it and prints its table (options:
--help), writing nothing unless given `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.pinning import CorePlan, Pinned, available_cores, pin
from bench.processes import REPO, Server
from bench.pusher import Pusher
from bridge.client import BridgeClient, CatalogReceived

__all__ = [
    "SCENARIOS",
    "CapacitySettings",
    "Point",
    "Scenario",
    "Search",
    "capacity_lines",
    "measure_capacity",
    "summarize",
]

P99_LIMIT_MS = 100.0
COLLECTOR_NAME = "c1"
CONNECTS_IN_FLIGHT = 80
SATURATED = 0.9
LATE_S = 0.5
OTHER_WORK = 0.25  # of a bridge core, taken by processes that are not the bench's
WINDOWS = (
    4  # at most, per point  # a share of one core (or of the machine) that counts as saturated
)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    channels: int
    rate: float

    def sources(self) -> list[str]:
        return [f"cap-{self.key}-{i}" for i in range(self.channels)]


SCENARIOS = (
    Scenario("1ch-1hz", "1 update/s, 1 channel", 1, 1.0),
    Scenario("10ch-1hz", "1 update/s on each of 10 channels", 10, 1.0),
    Scenario("1ch-10hz", "10 updates/s, 1 channel", 1, 10.0),
)


@dataclass
class Search:
    """The next client count to try, from the passes and failures so far."""

    start: int = 1000
    maximum: int = 16000
    step: int = 250
    resolution: float = 0.1
    best: int = 0
    lowest_failure: int | None = None
    tried: list[int] = field(default_factory=list)

    def record(self, clients: int, passed: bool) -> None:
        self.tried.append(clients)
        if passed:
            self.best = max(self.best, clients)
        elif self.lowest_failure is None or clients < self.lowest_failure:
            self.lowest_failure = clients

    def next(self) -> int | None:
        """The next count, or None when the answer is known to the resolution."""
        if not self.tried:
            return min(self.start, self.maximum)
        if self.lowest_failure is None:
            if self.best >= self.maximum:
                return None
            return min(self.best * 2, self.maximum)
        low, high = self.best, self.lowest_failure
        if high - low <= max(self.step, low * self.resolution):
            return None
        middle = (low + high) // 2 // self.step * self.step
        if middle <= low:
            middle = low + self.step
        return middle if middle < high else None

    @property
    def capped(self) -> bool:
        return self.lowest_failure is None and self.best >= self.maximum


@dataclass
class Point:
    """One window at one client count."""

    scenario: str
    clients: int
    connected: int
    failed: int
    open_after: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    latency_samples: int
    updates_per_client_s: float
    resyncs: int
    bridge_cpu: float
    bridge_rss: int
    load_cpu: float
    load_cpu_max: float
    collector_cpu: float
    machine_cpu: float
    connect_s: float
    load_catch_up_s: float = 0.0
    core_cpu: list[float] = field(default_factory=list)  # each core's busy share
    server_cores: list[int] = field(default_factory=list)  # the bridge's, if pinned
    late_s: float = 0.0  # how late the bench opened the window
    expected_per_client_s: float = 0.0  # updates each client should get per second
    disturbed: str = ""  # why the window does not tell (Point.disturbance), if it does not
    passed: bool = False
    first_p99_ms: float | None = None  # when the first window failed on latency alone

    def disturbance(self) -> str:
        """Why this window cannot tell about the bridge: the bench opened it late (this
        process was starved), fewer than 90 % of the updates arrived in it at all (a
        stall before the bridge), or other work took over a quarter of the bridge's
        cores while it failed. Empty when it can."""
        if self.late_s > LATE_S:
            return f"the bench opened the window {self.late_s:.1f} s late"
        if self.updates_per_client_s < 0.9 * self.expected_per_client_s:
            return "under 90 % of the updates arrived"
        other = self.other_work_on_bridge_cores()
        if not self.passed and other > OTHER_WORK:
            return f"other work took {other:.0%} of a bridge core"
        return ""

    def other_work_on_bridge_cores(self) -> float:
        """CPU (in cores) that neither the bridge nor the bench used where the bridge ran."""
        if self.server_cores:
            busy = sum(self.core_cpu[c] for c in self.server_cores if c < len(self.core_cpu))
            return max(0.0, busy - self.bridge_cpu)
        ours = self.bridge_cpu + self.load_cpu + self.collector_cpu
        return max(0.0, sum(self.core_cpu) - ours)

    def judge(self) -> bool:
        self.passed = self._served() and self.p99_ms is not None and self.p99_ms <= P99_LIMIT_MS
        return self.passed

    def latency_only_failure(self) -> bool:
        return self._served() and not self.passed

    def _served(self) -> bool:
        return (
            self.connected == self.clients
            and self.open_after == self.clients
            and self.latency_samples > 0
            and self.resyncs == 0
        )


def limit_of(point: Point | None) -> str:
    """What most likely stopped a failing point: whichever of the bridge's cores and the
    load side's were saturated, else what disturbed its last window, else the whole
    machine, else the time one event's fan-out to every client takes."""
    if point is None:
        return "none found (passed at the maximum tried)"
    if point.connected < point.clients:
        return "connections refused or timed out"
    found = []
    if point.bridge_cpu >= SATURATED * max(1, len(point.server_cores)):
        found.append("bridge CPU")
    rest = [share for core, share in enumerate(point.core_cpu) if core not in point.server_cores]
    ours = point.load_cpu + point.collector_cpu
    if (
        point.load_cpu_max >= SATURATED
        or point.load_catch_up_s > 1.0
        or (point.server_cores and rest and ours >= SATURATED * len(rest))
    ):
        found.append("load side CPU")
    if not found and point.disturbed:
        found.append(f"undetermined ({point.disturbed})")
    if not found and point.machine_cpu >= SATURATED:
        found.append("machine CPU (other work on the cores)")
    return " and ".join(found) or "bridge fan-out time (p99 of one event's sweep)"


def summarize(
    scenario: Scenario, points: list[Point], search: Search, stopped: str
) -> dict[str, Any]:
    """The scenario's row of the table: best passing count, its figures, what limited it."""
    passing = [p for p in points if p.passed and p.clients == search.best]
    best = passing[-1] if passing else None
    failing = [p for p in points if p.clients == search.lowest_failure]
    cores = best.bridge_cpu if best else 0.0
    # One bridge process is one event loop: pinned, it has the cores it was given;
    # unpinned, the cores it used, at least one.
    allotted = len(best.server_cores) if best and best.server_cores else max(1.0, cores)
    return {
        "scenario": scenario.key,
        "label": scenario.label,
        "channels": scenario.channels,
        "rate": scenario.rate,
        "clients": search.best,
        "first_failure": search.lowest_failure,
        "capped": search.capped,
        "stopped": stopped,
        "bridge_cpu": cores,
        "bridge_rss": best.bridge_rss if best else 0,
        "p99_ms": best.p99_ms if best else None,
        "load_cpu": best.load_cpu if best else 0.0,
        "clients_per_core": search.best / allotted if best else None,
        "limited_by": limit_of(failing[-1] if failing else None),
        "points": [asdict(p) for p in points],
    }


@dataclass
class CapacitySettings:
    budget_s: float = 360.0
    start: int = 1000
    maximum: int = 16000
    step: int = 250
    resolution: float = 0.1
    window_s: float = 8.0
    warmup_s: float = 3.0
    load_processes: int = 2
    latency_clients: int = 200
    source_addresses: int = 4
    scenarios: list[str] = field(default_factory=lambda: [s.key for s in SCENARIOS])
    server_cores: list[int] = field(default_factory=list)
    rest_cores: list[int] = field(default_factory=list)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit (inherited by what it starts) to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile(samples: list[float], cut: int) -> float | None:
    if len(samples) < 2:
        return samples[0] if samples else None
    return statistics.quantiles(samples, n=100, method="inclusive")[cut - 1]


class LoadProcess:
    """One bench.capacity_load process, driven line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ps = psutil.Process(proc.pid)

    @classmethod
    async def start(
        cls,
        url: str,
        channels: list[str],
        sources: list[str],
        latency_clients: int,
        connect_concurrency: int,
    ) -> LoadProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.capacity_load",
            "--url", url,
            "--channels", ",".join(channels),
            "--source-addresses", ",".join(sources),
            "--latency-clients", str(latency_clients),
            "--connect-concurrency", str(connect_concurrency),
            "--sync-timeout", "15",
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )  # fmt: skip
        load = cls(proc)
        ready = await load.read(within=60)
        if ready.get("event") != "ready":
            raise RuntimeError(f"load process failed: {ready}")
        return load

    async def read(self, within: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), within)
        if not line:
            raise RuntimeError("capacity load process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def ask(self, text: str, within: float = 60) -> dict[str, Any]:
        await self.tell(text)
        return await self.read(within)

    async def tell(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def close(self) -> None:
        try:
            await self.tell("exit")
            await asyncio.wait_for(self.proc.wait(), 30)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


def source_addresses(count: int) -> list[str]:
    """127.0.0.2, 127.0.0.3, ...: loopback addresses clients bind (Linux routes all of 127/8)."""
    if sys.platform != "linux":
        return []
    return [f"127.0.0.{2 + i}" for i in range(count)]


async def wait_for_channels(url: str, channels: list[str], within: float = 30) -> None:
    """The bridge lists every channel in its catalog (its upstream carries them)."""
    wanted = set(channels)
    async with asyncio.timeout(within), BridgeClient(url) as client:
        async for event in client.events():
            if isinstance(event, CatalogReceived) and wanted <= {c.channel for c in event.channels}:
                return


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def grow(loads: list[LoadProcess], clients: int) -> list[dict[str, Any]]:
    """Every load process opens or closes connections until `clients` are open in all."""
    return await asyncio.gather(
        *(
            load.ask(f"target {n}", within=120 + n / 20)
            for load, n in zip(loads, split(clients, len(loads)), strict=True)
        )
    )


async def measure_window(
    scenario: Scenario,
    clients: int,
    replies: list[dict[str, Any]],
    loads: list[LoadProcess],
    bridge: psutil.Process,
    collector: psutil.Process,
    settings: CapacitySettings,
) -> Point:
    """One window after `warmup_s`, judged."""
    opens = time.time() + settings.warmup_s
    closes = opens + settings.window_s
    for load in loads:
        await load.tell(f"window {opens} {closes}")
    watched = {"bridge": bridge, "collector": collector} | {
        f"load{i}": load.ps for i, load in enumerate(loads)
    }
    await asyncio.sleep(max(0.0, opens - time.time()))
    late = time.time() - opens
    before = {name: cpu_seconds(p) for name, p in watched.items()}
    psutil.cpu_percent(percpu=True)
    began = time.monotonic()
    await asyncio.sleep(max(0.0, closes - time.time()))
    cores = [share / 100 for share in psutil.cpu_percent(percpu=True)]
    seconds = max(1e-3, time.monotonic() - began)
    used = {name: (cpu_seconds(p) - before[name]) / seconds for name, p in watched.items()}

    rss = bridge.memory_info().rss
    await asyncio.sleep(0.3)
    results = await asyncio.gather(*(load.ask("result") for load in loads))
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    load_cpus = [used[f"load{i}"] for i in range(len(loads))]
    point = Point(
        scenario=scenario.key,
        clients=clients,
        connected=sum(r["clients"] for r in replies),
        failed=sum(r["failed"] for r in replies),
        open_after=sum(r["open"] for r in results),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else None,
        latency_samples=len(latencies),
        updates_per_client_s=sum(r["updates"] for r in results)
        / max(1, clients)
        / settings.window_s,
        resyncs=sum(r["resyncs"] for r in results),
        bridge_cpu=used["bridge"],
        bridge_rss=rss,
        load_cpu=sum(load_cpus),
        load_cpu_max=max(load_cpus),
        collector_cpu=used["collector"],
        machine_cpu=sum(cores) / len(cores),
        connect_s=max(r["connect_s"] for r in replies),
        load_catch_up_s=max(r["catch_up_s"] for r in results),
        core_cpu=cores,
        server_cores=settings.server_cores,
        late_s=late,
        expected_per_client_s=scenario.channels * scenario.rate,
    )
    point.judge()
    point.disturbed = point.disturbance()
    return point


async def measure_point(
    scenario: Scenario,
    clients: int,
    loads: list[LoadProcess],
    bridge: psutil.Process,
    collector: psutil.Process,
    settings: CapacitySettings,
) -> Point:
    """Grow or shrink to `clients`, then windows until one is judged (at most 4).

    A disturbed window (Point.disturbance) is measured again. A point that failed on
    latency alone is measured once more and judged on that second window."""
    replies = await grow(loads, clients)
    first_p99: float | None = None
    for attempt in range(WINDOWS):
        point = await measure_window(scenario, clients, replies, loads, bridge, collector, settings)
        last = attempt == WINDOWS - 1
        if point.disturbed and not last:
            print(f"{describe(point)} ({point.disturbed}: measured again)", flush=True)
            continue
        if point.passed or not point.latency_only_failure() or first_p99 is not None or last:
            break
        first_p99 = point.p99_ms
        print(describe(point).replace("->", "-> measured again:"), flush=True)
    point.first_p99_ms = first_p99
    return point


def describe(point: Point) -> str:
    p99 = "-" if point.p99_ms is None else f"{point.p99_ms:.1f}"
    return (
        f"    {point.clients:6,} clients: p99 {p99:>7} ms, {point.updates_per_client_s:.2f} "
        f"updates/s per client, {point.resyncs} resyncs, bridge {point.bridge_cpu:.0%} CPU "
        f"{point.bridge_rss / 2**20:.0f} MiB, load {point.load_cpu:.0%} "
        f"(busiest {point.load_cpu_max:.0%}), machine {point.machine_cpu:.0%} "
        f"(other work on the bridge's cores {point.other_work_on_bridge_cores():.0%}), "
        f"connected in {point.connect_s:.1f} s, load caught up in {point.load_catch_up_s:.1f} s"
        f"{'' if point.connected == point.clients else f', {point.connected} connected'}"
        f" -> {'pass' if point.passed else 'FAIL'}"
    )


async def run_scenario(
    scenario: Scenario, settings: CapacitySettings, budget_s: float, maximum: int
) -> dict[str, Any]:
    began = time.monotonic()
    collector = Server.module(
        "collector", ["--listen", "127.0.0.1:0", "--interval", "1", "--log-level", "WARNING"]
    )
    address = collector.addresses["grpc"]
    channels = [f"{COLLECTOR_NAME}/{s}" for s in scenario.sources()]
    pushers: list[asyncio.Task[float]] = []
    bridge: Server | None = None
    loads: list[LoadProcess] = []
    search = Search(settings.start, maximum, settings.step, settings.resolution)
    points: list[Point] = []
    stopped = "converged"
    try:
        spacing = 1.0 / (scenario.rate * scenario.channels)
        for index, source in enumerate(scenario.sources()):
            pusher = Pusher(address, source, seed=index + 1)
            pushers.append(
                asyncio.create_task(delayed_push(pusher, scenario.rate, index * spacing))
            )
        bridge = Server.module(
            "bridge",
            [
                "--listen", "127.0.0.1:0",
                "--collector", f"{COLLECTOR_NAME}={address}",
                "--max-connections", str(maximum + 1000),
                "--log-level", "WARNING",
            ],
        )  # fmt: skip
        pin(bridge.pid, frozenset(settings.server_cores))
        url = bridge.addresses["url"]
        await wait_for_channels(url, channels)
        sources = source_addresses(settings.source_addresses)
        per_process = max(1, settings.latency_clients // settings.load_processes)
        # Connects in flight stay under the listen backlog (asyncio's default, 100): past
        # it, a SYN is dropped and retried a second or more later.
        concurrency = max(10, CONNECTS_IN_FLIGHT // settings.load_processes)
        loads = [
            await LoadProcess.start(url, channels, sources, per_process, concurrency)
            for _ in range(settings.load_processes)
        ]
        bridge_ps, collector_ps = psutil.Process(bridge.pid), psutil.Process(collector.pid)
        durations: list[float] = []
        while (clients := search.next()) is not None:
            left = budget_s - (time.monotonic() - began)
            expected = max(durations, default=settings.warmup_s + settings.window_s + 5)
            if left < expected:
                stopped = "time budget"
                break
            started = time.monotonic()
            point = await measure_point(scenario, clients, loads, bridge_ps, collector_ps, settings)
            durations.append(time.monotonic() - started)
            points.append(point)
            search.record(clients, point.passed)
            print(describe(point), flush=True)
        else:
            stopped = "maximum" if search.capped else "converged"
    finally:
        for load in loads:
            await load.close()
        for task in pushers:
            task.cancel()
        await asyncio.gather(*pushers, return_exceptions=True)
        if bridge is not None:
            bridge.stop()
        collector.stop()
    row = summarize(scenario, points, search, stopped)
    row["elapsed_s"] = time.monotonic() - began
    return row


async def delayed_push(pusher: Pusher, rate: float, delay: float) -> float:
    await asyncio.sleep(delay)
    return await pusher.push(rate, seconds=24 * 3600)


async def measure_capacity(
    settings: CapacitySettings, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every chosen scenario, each with its share of the time budget."""
    limit = raise_fd_limit()
    per_load = math.ceil(settings.maximum / settings.load_processes)
    maximum = min(settings.maximum, (limit - 500) // settings.step * settings.step)
    if per_load + 200 > limit:
        maximum = min(maximum, (limit - 200) * settings.load_processes)
    chosen = [s for s in reversed(SCENARIOS) if s.key in settings.scenarios]
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + settings.budget_s
    with Pinned(frozenset(settings.rest_cores)):
        for index, scenario in enumerate(chosen):
            say(f"  {scenario.label}:")
            budget = (deadline - time.monotonic()) / (len(chosen) - index)
            rows.insert(0, await run_scenario(scenario, settings, budget, maximum))
            row = rows[0]
            say(
                f"  -> {row['clients']:,} clients at p99 <= {P99_LIMIT_MS:g} ms "
                f"({row['stopped']}; limited by {row['limited_by']})"
            )
    return {
        "settings": asdict(settings),
        "fd_limit": limit,
        "maximum": maximum,
        "cpus": os.cpu_count(),
        "source_addresses": source_addresses(settings.source_addresses),
        "scenarios": rows,
    }


def capacity_lines(capacity: dict[str, Any]) -> list[str]:
    """The markdown section: one row per scenario, then every point measured."""
    settings = capacity["settings"]
    lines = [
        "",
        f"Capacity of one bridge process: the most clients with p99 publish-to-receive <= "
        f"{P99_LIMIT_MS:g} ms and no update skipped (clients offering no compression; "
        f"{settings['load_processes']} load processes on "
        f"{len(capacity['source_addresses']) or 1} source addresses; windows of "
        f"{settings['window_s']:g} s; search from {settings['start']:,} doubling up to "
        f"{capacity['maximum']:,}, then bisecting; budget {settings['budget_s']:g} s). "
        "Clients per bridge core = clients / the cores the bridge had (pinned: its cores; "
        "else the cores it used, at least one); the CPU column is how much of them it used. "
        f"{_placement(settings, capacity['cpus'])}",
        "",
        "| scenario | clients at p99 <= 100 ms | first failure | bridge CPU | bridge RSS "
        "| p99 ms | load CPU | clients per bridge core | first failure limited by | search ended |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in capacity["scenarios"]:
        first = row["first_failure"]
        per_core = row["clients_per_core"]
        p99 = row["p99_ms"]
        lines.append(
            f"| {row['label']} | {row['clients']:,}{'+' if row['capped'] else ''} "
            f"| {'-' if first is None else f'{first:,}'} | {row['bridge_cpu']:.0%} "
            f"| {row['bridge_rss'] / 2**20:.0f} MiB | {'-' if p99 is None else f'{p99:.1f}'} "
            f"| {row['load_cpu']:.0%} | {'-' if per_core is None else f'{per_core:,.0f}'} "
            f"| {row['limited_by']} | {row['stopped']} |"
        )
    lines += [
        "",
        "| scenario | clients | p50 ms | p99 ms | updates/s per client | resyncs | bridge CPU "
        "| bridge RSS | load CPU (busiest process) | collector CPU | machine CPU | pass |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in capacity["scenarios"]:
        for p in row["points"]:
            connected = "" if p["connected"] == p["clients"] else f" ({p['connected']:,} connected)"
            lines.append(
                f"| {row['scenario']} | {p['clients']:,}{connected} "
                f"| {_ms(p['p50_ms'])} | {_ms(p['p99_ms'])} | {p['updates_per_client_s']:.2f} "
                f"| {p['resyncs']} | {p['bridge_cpu']:.0%} | {p['bridge_rss'] / 2**20:.0f} MiB "
                f"| {p['load_cpu']:.0%} ({p['load_cpu_max']:.0%}) | {p['collector_cpu']:.0%} "
                f"| {p['machine_cpu']:.0%} | {'yes' if p['passed'] else '**no**'}"
                f"{' (' + p['disturbed'] + ')' if p.get('disturbed') else ''} |"
            )
    return lines


def _placement(settings: dict[str, Any], cpus: int) -> str:
    server, rest = settings.get("server_cores"), settings.get("rest_cores")
    if not server:
        return f"Bridge, collector, pushers and load processes share the machine's {cpus} CPUs."
    return (
        f"The bridge is pinned to core(s) {','.join(map(str, server))}; collector, pushers "
        f"and load processes run on core(s) {','.join(map(str, rest or []))}."
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def parse_args(argv: list[str] | None) -> tuple[CapacitySettings, Path | None]:
    defaults = CapacitySettings()
    parser = argparse.ArgumentParser(
        prog="python -m bench.capacity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--budget", type=float, default=defaults.budget_s, help="seconds, all")
    parser.add_argument("--start", type=int, default=defaults.start)
    parser.add_argument("--max-clients", type=int, default=defaults.maximum)
    parser.add_argument("--step", type=int, default=defaults.step, help="count granularity")
    parser.add_argument("--window", type=float, default=defaults.window_s, help="seconds")
    parser.add_argument("--warmup", type=float, default=defaults.warmup_s, help="seconds")
    parser.add_argument("--load-processes", type=int, default=defaults.load_processes)
    parser.add_argument("--latency-clients", type=int, default=defaults.latency_clients)
    parser.add_argument("--source-addresses", type=int, default=defaults.source_addresses)
    parser.add_argument(
        "--scenarios",
        default=",".join(defaults.scenarios),
        help=f"of {','.join(s.key for s in SCENARIOS)}",
    )
    parser.add_argument(
        "--server-cores",
        default="0",
        help="cores the bridge is pinned to (collector, pushers and load processes get the "
        "others); '' pins nothing",
    )
    parser.add_argument("--json", type=Path, help="also write the section's JSON here")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - {s.key for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    try:
        plan = CorePlan.parse(args.server_cores, available_cores())
    except ValueError as exc:
        parser.error(f"--server-cores: {exc}")
    settings = CapacitySettings(
        budget_s=args.budget,
        start=args.start,
        maximum=args.max_clients,
        step=args.step,
        window_s=args.window,
        warmup_s=args.warmup,
        load_processes=args.load_processes,
        latency_clients=args.latency_clients,
        source_addresses=args.source_addresses,
        scenarios=args.scenarios.split(","),
        server_cores=sorted(plan.server),
        rest_cores=sorted(plan.rest),
    )
    return settings, args.json


def main(argv: list[str] | None = None) -> int:
    settings, out = parse_args(argv)
    print("capacity (clients per bridge at p99 <= 100 ms):", flush=True)
    capacity = asyncio.run(measure_capacity(settings))
    print("\n".join(capacity_lines(capacity)))
    if out is not None:
        out.write_text(json.dumps(capacity, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
