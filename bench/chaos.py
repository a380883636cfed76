"""`python -m bench.chaos`: clients that drop and resume at random, checked for gaps.

A collector and a bridge run as real processes; a pushed source changes at
`--rate` Hz. `--clients` clients each follow its channel, and over and over:
read for a random while, then drop the connection one of three ways (abrupt:
the TCP connection aborted with no close frame; clean: a WebSocket close;
blackhole: stop reading and answering, then vanish), reconnect and resume
from their position. A reference client never drops on its own.

It holds when no client ever got an update that did not continue its
position (gaps = 0) and every client's final state equals the reference's
state at that position (bench/chaos_view.py). `--restarts` also restarts the
collector twice and the bridge once in the middle (same ports); snapshots are
then expected where the epoch changed. Prints the figures, writes them as
JSON to `--out`, exits 1 if the run did not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from bench.chaos_view import ChannelView, History
from bench.processes import Server
from bench.pusher import Pusher
from metrics_bridge.v1 import bridge_pb2

__all__ = ["ChaosResult", "main"]

PROTOCOL = Subprotocol("metrics-bridge.v1")
SOURCE = "chaos"
DROPS = ("abrupt", "clean", "blackhole")


@dataclass
class ChaosResult:
    clients: int
    seconds: float
    restarts: bool
    cycles: int = 0
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROPS, 0))
    resumes: int = 0
    recovered: int = 0
    fallbacks_new_epoch: int = 0
    fallbacks_same_epoch: int = 0
    gaps: int = 0
    checked: int = 0
    mismatched: int = 0
    unchecked: int = 0
    connect_failures: int = 0
    reference_updates: int = 0
    problems: list[str] = field(default_factory=list)
    restarts_done: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.gaps == 0 and self.mismatched == 0 and self.checked > 0


class ChaosClient:
    """One client: follows the channel, drops at random, resumes."""

    def __init__(
        self,
        url: str,
        channel: str,
        rng: random.Random,
        drops: bool,
        lifetime: tuple[float, float] = (0.3, 3.0),
    ) -> None:
        self.url = url
        self.lifetime = lifetime
        self.view = ChannelView(channel)
        self.rng = rng
        self.drops = drops
        self.cycles = 0
        self.drop_counts = dict.fromkeys(DROPS, 0)
        self.connect_failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                ws = await connect(self.url, subprotocols=[PROTOCOL], open_timeout=10)
            except (OSError, InvalidHandshake, TimeoutError):
                self.connect_failures += 1
                await asyncio.sleep(self.rng.uniform(0.1, 0.5))
                continue
            try:
                await self._session(ws, stop)
            except ConnectionClosed:
                await asyncio.sleep(self.rng.uniform(0.05, 0.3))
            finally:
                ws.transport.abort()

    async def _session(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        request = bridge_pb2.ClientMessage()
        item = request.subscribe.channels.add(channel=self.view.channel)
        resume = self.view.resume_from()
        if resume is not None:
            item.resume.epoch, item.resume.seq = resume
        await ws.send(request.SerializeToString())
        lifetime = self.rng.uniform(*self.lifetime) if self.drops else float("inf")
        deadline = time.monotonic() + lifetime
        while not stop.is_set():
            timeout = min(0.5, max(0.0, deadline - time.monotonic()))
            if self.drops and timeout <= 0:
                break
            try:
                data = await asyncio.wait_for(ws.recv(), timeout)
            except TimeoutError:
                continue
            self.view.take(bridge_pb2.ServerMessage.FromString(data))  # type: ignore[arg-type]
        if stop.is_set():
            await ws.close()
            return
        how = self.rng.choice(DROPS)
        self.drop_counts[how] += 1
        self.cycles += 1
        if how == "abrupt":
            ws.transport.abort()
        elif how == "clean":
            await ws.close()
        else:
            ws.transport.pause_reading()  # no reads, no pongs: a dead peer
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            ws.transport.abort()


async def push_forever(address: str, rate: float, stop: asyncio.Event) -> None:
    """Push at `rate` Hz until `stop`, riding out collector restarts."""
    pusher = Pusher(address, SOURCE, series=20, seed=7)
    while not stop.is_set():
        try:
            await pusher.push(rate, 1.0)
        except grpc.RpcError:
            await asyncio.sleep(0.2)


async def wait_for_channel(url: str, channel: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with connect(url, subprotocols=[PROTOCOL]) as ws:
                while True:
                    message = bridge_pb2.ServerMessage.FromString(await ws.recv())  # type: ignore[arg-type]
                    if message.WhichOneof("body") == "catalog":
                        if any(c.channel == channel for c in message.catalog.channels):
                            return
                        break
        except (OSError, ConnectionClosed, InvalidHandshake):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the bridge never listed {channel}")


def start_collector(port: int = 0) -> Server:
    return Server.module("collector", ["--listen", f"127.0.0.1:{port}", "--interval", "1"])


def start_bridge(collector: str, port: int = 0) -> Server:
    args = ["--listen", f"127.0.0.1:{port}", "--collector", f"c1={collector}"]
    args += ["--ping-interval", "2", "--ping-timeout", "2"]
    return Server.module("bridge", args)


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


async def chaos(args: argparse.Namespace) -> ChaosResult:
    result = ChaosResult(args.clients, args.seconds, args.restarts)
    collector = start_collector()
    grpc_address = collector.addresses["grpc"]
    bridge = start_bridge(grpc_address)
    url = bridge.addresses["url"]
    channel = f"c1/{SOURCE}"
    stop = asyncio.Event()
    pushing = asyncio.create_task(push_forever(grpc_address, args.rate, stop))
    try:
        await wait_for_channel(url, channel)
        history = History()
        reference = ChaosClient(url, channel, random.Random(0), drops=False)
        reference.view.history = history
        rng = random.Random(args.seed)
        clients = [
            ChaosClient(url, channel, random.Random(rng.random()), drops=True)
            for _ in range(args.clients)
        ]
        tasks = [asyncio.create_task(c.run(stop)) for c in [reference, *clients]]
        started = time.monotonic()
        if args.restarts:
            plan = [(0.2, "collector"), (0.4, "collector"), (0.6, "bridge")]
            for share, what in plan:
                await asyncio.sleep(max(0.0, started + share * args.seconds - time.monotonic()))
                if what == "collector":
                    collector.stop()
                    collector = start_collector(port_of(grpc_address))
                else:
                    bridge.stop()
                    bridge = start_bridge(grpc_address, port_of(bridge.addresses["ws"]))
                result.restarts_done.append(f"{what} at {time.monotonic() - started:.0f}s")
        await asyncio.sleep(max(0.0, started + args.seconds - time.monotonic()))
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        stop.set()
        await asyncio.gather(pushing, return_exceptions=True)
        bridge.stop()
        collector.stop()
    result.reference_updates = reference.view.updates
    for client in [reference, *clients]:
        view = client.view
        result.cycles += client.cycles
        for how, count in client.drop_counts.items():
            result.drops[how] += count
        result.resumes += view.resumes
        result.recovered += view.recovered
        result.fallbacks_new_epoch += view.fallbacks_new_epoch
        result.fallbacks_same_epoch += view.fallbacks_same_epoch
        result.gaps += view.gaps
        result.connect_failures += client.connect_failures
        result.problems.extend(view.problems[: max(0, 10 - len(result.problems))])
        verdict = history.check(view)
        if verdict is None:
            result.unchecked += 1
        elif verdict:
            result.checked += 1
        else:
            result.mismatched += 1
    return result


def report(result: ChaosResult) -> str:
    lines = [
        f"chaos: {result.clients} clients + 1 reference, {result.seconds:g} s"
        + (f", restarts: {', '.join(result.restarts_done)}" if result.restarts else ""),
        f"  cycles (drop + reconnect): {result.cycles} "
        f"(abrupt {result.drops['abrupt']}, clean {result.drops['clean']}, "
        f"blackhole {result.drops['blackhole']})",
        f"  resumes: {result.resumes}; recovered {result.recovered}; snapshot fallbacks "
        f"{result.fallbacks_new_epoch + result.fallbacks_same_epoch} "
        f"(new epoch {result.fallbacks_new_epoch}, same epoch {result.fallbacks_same_epoch})",
        f"  gaps: {result.gaps}",
        f"  final state = reference's at that position: {result.checked}; "
        f"different: {result.mismatched}; reference never there: {result.unchecked}",
        f"  reference updates: {result.reference_updates}; "
        f"connect failures (retried): {result.connect_failures}",
        f"  {'HELD' if result.held else 'FAILED'}",
    ]
    lines.extend(f"  problem: {p}" for p in result.problems)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="pushed updates per second")
    parser.add_argument("--restarts", action="store_true", help="restart collector x2, bridge x1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = asyncio.run(chaos(args))
    print(report(result), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {**result.__dict__, "held": result.held}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if result.held else 1


if __name__ == "__main__":
    sys.exit(main())
