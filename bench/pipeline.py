"""The pipeline benchmark: Push -> collector -> Subscribe -> bridge -> WebSocket client.

`--pushers` processes each stream batches of `--series` gauges to a source of
their own, as fast as the collector takes them (pre-encoded requests, so the
pushers cost little): `--batches-per-message` of them in each PushBatches
message (32 by default), or one per Push message with 1. One WebSocket
client subscribes to every pushed channel through one bridge and checks each
Update's seq: an event counts when it
arrives in order with no gap, alone or in a merged update (a bridge that falls
behind merges a channel's updates, ServerMessage.first_seq); a gap or a
resync snapshot is reported. With
`--subscribers` above 1, the other subscribers are bare gRPC Subscribe
streams (one process, one thread each) asking what a bridge asks (batches,
value deltas) and reading every event, as more bridges would: the
collector's CPU per event shows what each extra subscriber costs.

Run: `python -m bench.pipeline` (also a section of `make bench`). Prints one
JSON line per subscriber count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import psutil

from bench.load import client_frame, handshake_request
from bench.processes import REPO, Server
from collector.event_batch import varint
from metrics_bridge.v1 import bridge_pb2, collector_pb2, metrics_pb2

__all__ = ["PipelineResult", "measure_pipeline", "pipeline_batches"]

COLLECTOR = "c1"
PUSH_METHOD = "/metrics_bridge.v1.MetricsCollector/Push"
PUSH_BATCHES_METHOD = "/metrics_bridge.v1.MetricsCollector/PushBatches"
BATCHES_PER_MESSAGE = 32
"""Batches per PushBatches message by default; 1 pushes one batch per Push message."""
SUBSCRIBE_METHOD = "/metrics_bridge.v1.MetricsCollector/Subscribe"


def pipeline_batches(source: str, series: int, count: int, seed: int) -> list[bytes]:
    """`count` encoded PushRequests of `series` gauges, consecutive ones all different."""
    rng = random.Random(seed)
    batches = []
    for n in range(count):
        samples = [
            collector_pb2.Sample(
                name="pipeline_value",
                labels=[metrics_pb2.Label(name="series", value=str(i))],
                kind=metrics_pb2.METRIC_KIND_GAUGE,
                unit="1",
                number=float(rng.randint(0, 1_000_000) * 2 + n % 2),
            )
            for i in range(series)
        ]
        batches.append(
            collector_pb2.PushRequest(source=source, samples=samples).SerializeToString()
        )
    return batches


async def push(
    address: str,
    source: str,
    seconds: float,
    series: int,
    start: float = 0.0,
    per_message: int = BATCHES_PER_MESSAGE,
) -> int:
    """Stream pre-encoded batches for `seconds`; returns how many the collector accepted.

    `per_message` batches go in each PushBatches message (1: one per Push
    message). The loop writes them as fast as gRPC flow control lets it, so a
    collector slower than that holds the pushers back rather than queueing."""
    batches = pipeline_batches(source, series, 1024, seed=hash(source) & 0xFFFF)
    if per_message > 1:
        method, messages = PUSH_BATCHES_METHOD, batches_messages(batches, per_message)
    else:
        method, messages = PUSH_METHOD, batches

    async def requests() -> Any:
        end = time.monotonic() + seconds
        n = 0
        while n == 0 or time.monotonic() < end:
            for _ in range(64 if seconds > 0 else 1):
                yield messages[n % len(messages)]
                n += 1

    async with grpc.aio.insecure_channel(address) as channel:
        await channel.channel_ready()
        await asyncio.sleep(max(0.0, start - time.time()))  # every pusher starts together
        call = channel.stream_unary(
            method,
            request_serializer=bytes,
            response_deserializer=collector_pb2.PushResponse.FromString,
        )
        response = await call(requests())
    return int(response.batches)


def batches_messages(batches: list[bytes], per_message: int) -> list[bytes]:
    """Encoded PushBatchesRequests of `per_message` consecutive batches each.

    A repeated message field is its elements' encodings, each tagged and
    length-prefixed, so the batches' bytes are joined, not re-encoded."""
    tagged = [b"\x0a" + varint(len(b)) + b for b in batches]  # PushBatchesRequest.batches = 1
    return [b"".join(tagged[i : i + per_message]) for i in range(0, len(tagged), per_message)]


def drain(address: str, streams: int, seconds: float) -> int:
    """`streams` Subscribe calls read for `seconds`; returns the messages read."""
    counts = [0] * streams
    request = subscribe_request()

    def read(index: int) -> None:
        with grpc.insecure_channel(address) as channel:
            call = channel.unary_stream(
                SUBSCRIBE_METHOD,
                request_serializer=collector_pb2.SubscribeRequest.SerializeToString,
                response_deserializer=None,
            )(request, timeout=seconds)
            try:
                for _ in call:
                    counts[index] += 1
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=read, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def subscribe_request() -> collector_pb2.SubscribeRequest:
    """Every source, batched and with value deltas when the collector offers them,
    as a bridge asks (bridge/upstream.py)."""
    request = collector_pb2.SubscribeRequest()
    fields = collector_pb2.SubscribeRequest.DESCRIPTOR.fields_by_name
    if "max_batch_events" in fields:
        request.max_batch_events = 256
    if "value_deltas" in fields:
        request.value_deltas = True
    return request


class Checker(asyncio.Protocol):
    """A raw WebSocket client that subscribes to channels and checks every Update's seq."""

    def __init__(self, url: str, channels: list[str]) -> None:
        self.request = handshake_request(url, deflate=False)
        self.subscribe = bridge_pb2.ClientMessage(
            subscribe=bridge_pb2.Subscribe(
                channels=[bridge_pb2.ChannelRequest(channel=c) for c in channels]
            )
        ).SerializeToString()
        self.wanted = set(channels)
        self.seqs: dict[str, int] = {}
        self.buffer = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.in_order = 0
        self.gaps = 0
        self.merged = 0
        """Merged updates (first_seq) among what arrived: several events each."""
        self.resyncs = 0
        self.last_at = 0.0
        self.target: int | None = None
        self.caught_up = asyncio.Event()
        self.synced = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.open = True
            assert self.transport is not None
            self.transport.write(client_frame(0x2, self.subscribe))
        buf, pos, size = self.buffer, 0, len(self.buffer)
        while size - pos >= 2:
            length, head = buf[pos + 1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 0x2:
                self.message(bytes(buf[pos + head : pos + head + length]))
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(
                    client_frame(0xA, bytes(buf[pos + head : pos + head + length]))
                )
            pos += head + length
        del buf[:pos]

    def expect(self, target: int) -> None:
        """Set `caught_up` once in-order updates plus resyncs reach `target`."""
        self.target = target
        if self.in_order + self.resyncs >= target:
            self.caught_up.set()

    def message(self, payload: bytes) -> None:
        message = bridge_pb2.ServerMessage.FromString(payload)
        body = message.WhichOneof("body")
        if body == "update":
            last = self.seqs.get(message.channel)
            # A bridge that fell behind merges (first_seq): the events it covers arrived.
            first = message.first_seq or message.update.seq
            if last is None or first != last + 1:
                self.gaps += 1
            else:
                self.in_order += message.update.seq - last
                self.merged += first != message.update.seq
                self.last_at = time.monotonic()
                if self.target is not None and self.in_order + self.resyncs >= self.target:
                    self.caught_up.set()
            self.seqs[message.channel] = message.update.seq
        elif body == "snapshot":
            if message.channel in self.seqs:
                self.resyncs += 1
            self.seqs[message.channel] = message.snapshot.seq
            if self.wanted <= self.seqs.keys() and not self.synced.done():
                self.synced.set_result(None)


@dataclass
class PipelineResult:
    subscribers: int
    pushers: int
    series: int
    batches_per_message: int
    """1: Push, one batch per message; more: PushBatches."""
    seconds: float
    pushed: int
    """Batches the collector accepted in the window: one update each."""
    delivered: int
    """Updates that reached the WebSocket client in order in the window."""
    events_per_s: float
    """Updates that reached the WebSocket client in order, per second."""
    gaps: int
    resyncs: int
    merged: int
    """Merged updates among those delivered (each covers several events)."""
    collector_cpu_us_per_event: float
    bridge_cpu_us_per_event: float
    collector_cpu_share: float


async def measure_pipeline(
    subscribers: int,
    pushers: int = 4,
    series: int = 10,
    seconds: float = 5.0,
    per_message: int = BATCHES_PER_MESSAGE,
) -> PipelineResult:
    collector = Server.module(
        "collector",
        ["--listen", "127.0.0.1:0", "--log-level", "WARNING", "--max-batch-samples", "1000"],
    )
    bridge: Server | None = None
    try:
        address = collector.addresses["grpc"]
        bridge = Server.module(
            "bridge",
            ["--listen", "127.0.0.1:0", "--collector", f"{COLLECTOR}={address}",
             "--log-level", "WARNING"],
        )  # fmt: skip
        sources = [f"pipe{i}" for i in range(pushers)]
        for source in sources:  # create the sources, so the client can subscribe
            await push(address, source, 0.0, series)
        checker, transport = await connect(bridge.addresses["url"], sources)
        drainer = None
        if subscribers > 1:
            drainer = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bench.pipeline", "drain", address),
                *(str(subscribers - 1), str(seconds + 8)),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(1.0)
        cprocess, bprocess = psutil.Process(collector.pid), psutil.Process(bridge.pid)
        start = time.time() + 4.0
        procs = [
            await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bench.pipeline", "push", address, source),
                *(str(seconds), str(series), str(start), str(per_message)),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
            )
            for source in sources
        ]
        await asyncio.sleep(max(0.0, start - time.time()))
        profilers = _profile({"collector": collector.pid, "bridge": bridge.pid}, seconds)
        c0, b0 = _cpu(cprocess), _cpu(bprocess)
        in_order0 = checker.in_order
        began = time.monotonic()
        outputs = await asyncio.gather(*(p.communicate() for p in procs))
        elapsed = time.monotonic() - began
        pushed = sum(int(out.strip() or 0) for out, _ in outputs)
        # What the pushers got accepted may still be crossing the bridge: wait for it.
        checker.expect(in_order0 + pushed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(checker.caught_up.wait(), 10)
        delivered_at = max(checker.last_at, began + 1e-3) - began
        c1, b1 = _cpu(cprocess), _cpu(bprocess)
        delivered = checker.in_order - in_order0
        transport.abort()
        for profiler in profilers:
            profiler.wait(timeout=60)
        if drainer is not None:
            await asyncio.wait_for(drainer.communicate(), seconds + 30)
        return PipelineResult(
            subscribers=subscribers,
            pushers=pushers,
            series=series,
            batches_per_message=per_message,
            seconds=round(elapsed, 2),
            pushed=pushed,
            delivered=delivered,
            events_per_s=round(delivered / max(delivered_at, 1e-9)),
            gaps=checker.gaps,
            resyncs=checker.resyncs,
            merged=checker.merged,
            collector_cpu_us_per_event=round((c1 - c0) / max(pushed, 1) * 1e6, 1),
            bridge_cpu_us_per_event=round((b1 - b0) / max(delivered, 1) * 1e6, 1),
            collector_cpu_share=round((c1 - c0) / max(delivered_at, 1e-9), 2),
        )
    finally:
        if bridge is not None:
            bridge.stop()
        collector.stop()


async def connect(url: str, sources: list[str]) -> tuple[Checker, asyncio.Transport]:
    """A Checker with a snapshot of every source (retried until the bridge has them)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    channels = [f"{COLLECTOR}/{s}" for s in sources]
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 30
    while True:
        checker = Checker(url, channels)
        transport, _ = await loop.create_connection(functools.partial(_same, checker), host, port)
        try:
            await asyncio.wait_for(asyncio.shield(checker.synced), 3)
            return checker, transport
        except TimeoutError:  # the bridge had not seen every source yet
            transport.abort()
            if time.monotonic() > deadline:
                raise


def _same(checker: Checker) -> Checker:
    return checker


def _profile(pids: dict[str, int], seconds: float) -> list[subprocess.Popen[bytes]]:
    """With BENCH_PROFILE=DIR, py-spy samples each process for `seconds` into
    DIR/NAME.txt (collapsed stacks; bench.profile_summary reads them)."""
    out = os.environ.get("BENCH_PROFILE")
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not out or not Path(spy).exists():
        return []
    Path(out).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                *(spy, "record", "--pid", str(pid), "--duration", str(int(seconds))),
                *("--rate", "200", "--format", "raw", "--nonblocking"),
                *("--output", str(Path(out) / f"{name}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["push"]:
        address, source, seconds, series, start, per_message = argv[1:7]
        print(
            asyncio.run(
                push(address, source, float(seconds), int(series), float(start), int(per_message))
            )
        )
        return 0
    if argv[:1] == ["drain"]:
        address, streams, seconds = argv[1:4]
        print(drain(address, int(streams), float(seconds)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--subscribers", default="1,10", help="comma-separated counts")
    parser.add_argument("--pushers", type=int, default=4)
    parser.add_argument("--series", type=int, default=10, help="gauges per batch")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--batches-per-message",
        type=int,
        default=BATCHES_PER_MESSAGE,
        help="batches per PushBatches message; 1 = one batch per Push message",
    )
    args = parser.parse_args(argv)
    for count in [int(c) for c in args.subscribers.split(",")]:
        result = asyncio.run(
            measure_pipeline(
                count, args.pushers, args.series, args.seconds, args.batches_per_message
            )
        )
        print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
